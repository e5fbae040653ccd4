import { getSystemErrorName } from 'node:util';
import { ByteWriter } from '../byte-writer';
import type { FrameEncoder } from '../codec';
import { type NativeTransportHandle, NativeEvent, loadBinding, nativeCounterIndex } from './addon';
import type { Transport, TransportCounters, TransportEvents, TransportOptions } from './types';
import { whenRunEnds } from './microtask';

// Loaded at require time on purpose: src/transport/select.ts falls back to the JS transport when this throws.
const binding = loadBinding();
/** Where counters(out) puts each counter, by name (the addon's counterFields, checked by loadBinding). */
const counterAt = nativeCounterIndex(binding.counterFields);

/**
 * Telemetry is handed to the addon in batches: frames accepted in one synchronous run are written
 * as UTF-8 into one staging buffer and passed once (at this size, or when the run ends), which the
 * addon copies with one memcpy. The first send of a run goes over at once, so a lone message never
 * waits for the microtask. See bench/native-handoff.md.
 */
const STAGE_BYTES = 64 * 1024;
/** A frame larger than the staging buffer grows it; it is given back once the batch is handed over. */
const STAGE_CAPACITY = STAGE_BYTES + 16 * 1024;

/** The native transport: the addon owns the socket and the queue; this class adapts it to Transport. */
class NativeTransport implements Transport {
  readonly kind = 'native' as const;

  private readonly handle: NativeTransportHandle;
  /** [queued telemetry count, queued telemetry bytes, refused as 'stop'] as of the last push. */
  private readonly status = new Float64Array(3);
  private readonly countersOut = new Float64Array(binding.counterFields.length);
  private isLinked = false;
  private started = false;
  /**
   * Frames accepted but not yet handed to the addon: a batch is either UTF-8 bytes in `stage` (frames
   * the encoder wrote as bytes, and strings that came after them) or one string, `stagedText` (when
   * it began with a frame built as a string), never both.
   */
  private readonly stage = new ByteWriter(STAGE_CAPACITY);
  private stagedText = '';
  private stagedCount = 0;
  /** A frame is being written into the staging buffer (user code may run meanwhile: getters, toJSON). */
  private encoding = false;
  /** Frames sent while `encoding`, in order. */
  private nested: string[] = [];
  private inRun = false;
  /** send() returned false and 'drain' has not come yet: keep saying false, as JsTransport does. */
  private drainPending = false;
  /**
   * send() returned false before a stop and no 'drain' came yet: every start() arms it again, until
   * it comes (a stop before the link makes the addon forget the wait once more).
   */
  private drainOwed = false;
  private stopping: Promise<void> | null = null;
  private stopWaiter: ((dropped: number) => void) | null = null;
  private consumePending = false;
  private readonly consumed = (): void => {
    this.consumePending = false;
    this.handle.consumed();
  };
  private readonly endRun = (): void => {
    this.inRun = false;
    if (this.stagedCount > 0) this.flushStaged();
  };

  constructor(
    private readonly options: TransportOptions,
    private readonly events: TransportEvents,
  ) {
    this.handle = new binding.Transport(options, this.status, (list, inbound) => this.onNativeEvents(list, inbound));
  }

  get linked(): boolean {
    return this.isLinked;
  }

  start(hello: string): void {
    if (this.started) return;
    this.started = true;
    this.handle.start(hello);
    // A 'drain' is still owed for a false said before a stop (or while stopped): the addon forgot
    // that wait, so arm it again; it comes once linked and under the mark, as on the JS transport.
    if (this.drainOwed || this.drainPending) this.handle.push('', 0, true);
  }

  sendTelemetry(encoder: FrameEncoder, msg: object, channel: string | undefined): boolean {
    if (this.encoding) {
      // send() from a getter or toJSON of the message being written into the staging buffer: kept
      // aside and placed ahead of it, where JSON.stringify's order puts it.
      this.nested.push(encoder.telemetry(msg, channel));
      return !this.drainPending && this.status[1]! + this.stagedBytes() < this.options.highWaterMark;
    }
    const stage = this.stage;
    let start = stage.pos;
    let served = false;
    this.encoding = true;
    try {
      served = encoder.telemetryInto(msg, channel, stage);
    } finally {
      this.encoding = false;
      if (this.nested.length > 0) start = this.placeNested(start);
    }
    if (served) {
      // A batch that began as text stays text: these bytes join it as a string.
      if (this.stagedText !== '') {
        this.stagedText += stage.buf.toString('utf8', start, stage.pos);
        stage.pos = start;
      }
    } else {
      // Not served as bytes: JSON.stringify (which throws ValueError here, with nothing staged).
      this.stageText(encoder.telemetry(msg, channel));
    }
    return this.staged();
  }

  send(frame: string): boolean {
    this.stageText(frame);
    return this.staged();
  }

  /**
   * Appends a frame built as a string: joined to a text batch (cheaper than a UTF-8 copy per frame),
   * or copied into a batch that began as bytes.
   */
  private stageText(frame: string): void {
    if (this.stage.pos > 0) this.stage.string(frame);
    else this.stagedText += frame;
  }

  /** Bytes (characters, for a text batch) staged and not yet handed over. */
  private stagedBytes(): number {
    return this.stage.pos > 0 ? this.stage.pos : this.stagedText.length;
  }

  /**
   * Stages the frames sent while the frame from `start` on was written, ahead of it, and returns
   * where that frame's bytes now begin.
   */
  private placeNested(start: number): number {
    const stage = this.stage;
    const outer = stage.pos > start ? Buffer.from(stage.buf.subarray(start, stage.pos)) : null;
    stage.pos = start;
    const frames = this.nested;
    this.nested = [];
    for (const frame of frames) {
      this.stageText(frame);
      this.staged();
    }
    const at = stage.pos;
    if (outer) stage.bytes(outer);
    return at;
  }

  /** One frame was appended to the staging buffer: hand it over now or later, and answer send(). */
  private staged(): boolean {
    this.stagedCount++;
    let dropped: number;
    if (!this.inRun) {
      // Nothing is staged outside a run (its end hands everything over): this frame goes alone.
      this.inRun = true;
      whenRunEnds(this.endRun);
      dropped = this.flushStaged();
    } else {
      const overCount = !this.isLinked && this.status[0]! + this.stagedCount > this.options.maxBufferedMsgs;
      dropped = overCount || this.stagedBytes() >= STAGE_BYTES ? this.flushStaged() : 0;
    }
    if (this.drainPending) return false;
    const droppedWhileAway = !this.isLinked && dropped > 0;
    if (droppedWhileAway || this.status[1]! + this.stagedBytes() >= this.options.highWaterMark) {
      if (this.stagedCount > 0) this.flushStaged();
      if (droppedWhileAway || this.status[1]! >= this.options.highWaterMark) {
        // The I/O thread drains concurrently, so the answer is latched until its 'drain' event;
        // otherwise a synchronous burst would see true again as soon as the kernel took a batch.
        this.drainPending = true;
        this.push('', 0, true);
        return false;
      }
    }
    return true;
  }

  call(frame: string): boolean {
    if (this.handle.call(frame, false)) return true;
    this.events.onDrop('calls', 1);
    return false;
  }

  report(frame: string): void {
    this.handle.call(frame, true);
  }

  hold(held: boolean): void {
    this.handle.hold(held);
  }

  stop(goodbye: string, timeoutMs: number): Promise<void> {
    if (!this.stopping) {
      this.stopping = this.doStop(goodbye, timeoutMs).finally(() => {
        this.stopping = null;
      });
    }
    return this.stopping;
  }

  counters(): TransportCounters {
    const c = this.countersOut;
    this.handle.counters(c);
    return {
      written: c[counterAt.written]!,
      bytesWritten: c[counterAt.bytesWritten]!,
      buffered: c[counterAt.buffered]! + this.stagedCount,
      bufferedBytes: c[counterAt.bufferedBytes]! + this.stagedBytes(),
      droppedOverflow: c[counterAt.droppedOverflow]!,
      droppedStop: c[counterAt.droppedStop]!,
      droppedCalls: c[counterAt.droppedCalls]!,
      callsWritten: c[counterAt.callsWritten]!,
      callsBuffered: c[counterAt.callsBuffered]!,
      reconnects: c[counterAt.reconnects]!,
      connectErrors: c[counterAt.connectErrors]!,
      oversizeFrames: c[counterAt.oversizeFrames]!,
    };
  }

  ref(): void {
    this.handle.ref();
  }

  unref(): void {
    this.handle.unref();
  }

  private flushStaged(): number {
    this.stagedCount = 0;
    const stage = this.stage;
    if (stage.pos === 0) {
      const text = this.stagedText;
      this.stagedText = '';
      return this.push(text, Buffer.byteLength(text), false);
    }
    // The addon copies the bytes during the call, so the buffer is free again as soon as it returns.
    const dropped = this.push(stage.buf, stage.pos, false);
    stage.pos = 0;
    stage.shrink(STAGE_CAPACITY);
    return dropped;
  }

  /** Hands frames to the addon and reports what it dropped; returns the 'overflow' count. */
  private push(frames: string | Buffer, bytes: number, wantDrain: boolean): number {
    const dropped = this.handle.push(frames, bytes, wantDrain);
    if (dropped > 0) this.events.onDrop('overflow', dropped);
    // Sent while stop() is in progress: never written after the goodbye, so dropped at once.
    const refused = this.status[2]!;
    if (refused > 0) this.events.onDrop('stop', refused);
    return dropped;
  }

  private doStop(goodbye: string, timeoutMs: number): Promise<void> {
    this.started = false;
    // Accepted messages still in JS go to the addon first, to be flushed with the rest.
    if (this.stagedCount > 0) this.flushStaged();
    const dropped = this.handle.stop(goodbye, timeoutMs);
    if (dropped >= 0) {
      this.stopped(dropped);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.stopWaiter = (n) => {
        this.stopped(n);
        resolve();
      };
    });
  }

  private stopped(dropped: number): void {
    this.isLinked = false;
    // The latch does not outlive the stop: after a restart send() answers from the queue as it is
    // then. The 'drain' it promised is still owed, and is armed again by start().
    if (this.drainPending) {
      this.drainPending = false;
      this.drainOwed = true;
    }
    if (dropped > 0) this.events.onDrop('stop', dropped);
  }

  private onNativeEvents(list: unknown[], inbound: Buffer | undefined): void {
    // Frames (or oversize lines) came: let the I/O thread read more once the event loop has turned,
    // so that an agent writing faster than the callbacks run is held back by the socket, and timers
    // still get a turn. Skipped lines count towards the read-ahead too, so they need consumed() as well.
    let readAhead = inbound !== undefined;
    for (let i = 0; !readAhead && i < list.length; i += 3) readAhead = list[i] === NativeEvent.oversize;
    if (readAhead && !this.consumePending) {
      this.consumePending = true;
      setImmediate(this.consumed);
    }
    let failure: unknown = null;
    for (let i = 0; i < list.length; i += 3) {
      try {
        this.dispatch(list[i] as number, list[i + 1], list[i + 2], inbound);
      } catch (err) {
        // Deliver the rest of the batch (an unlink must not be lost), then surface the first error.
        failure ??= err;
      }
    }
    if (failure !== null) {
      // Thrown from the thread-safe function's callback, Node-API would only print a warning:
      // rethrow on the next tick so it is an ordinary uncaught exception, as with node:net events.
      process.nextTick(() => {
        throw failure;
      });
    }
  }

  private dispatch(code: number, a: unknown, b: unknown, inbound: Buffer | undefined): void {
    switch (code) {
      case NativeEvent.link:
        this.isLinked = true;
        this.events.onLink();
        return;
      case NativeEvent.unlink:
        this.isLinked = false;
        this.events.onUnlink((a as number) === 0 ? null : systemError(a as number, b as string));
        return;
      case NativeEvent.connectError:
        this.events.onConnectError(systemError(a as number, b as string, this.options.socketPath));
        return;
      case NativeEvent.frames: {
        // Views of the inbound Buffer, which the next delivery overwrites (see onFrames).
        const buf = inbound!;
        const sizes = b as Uint32Array;
        const frames: Buffer[] = new Array(sizes.length);
        let offset = a as number;
        for (let i = 0; i < sizes.length; i++) {
          frames[i] = buf.subarray(offset, offset + sizes[i]!);
          offset += sizes[i]!;
        }
        this.events.onFrames(frames);
        return;
      }
      case NativeEvent.oversize:
        // The addon merges consecutive lines of one length (so a flood costs it no memory); a
        // delivery holds at most its read-ahead bound of them, so this loop is bounded too.
        for (let n = b as number; n > 0; n--) this.events.onOversize(a as number);
        return;
      case NativeEvent.drop:
        this.events.onDrop('overflow', a as number);
        return;
      case NativeEvent.callsDropped:
        this.events.onDrop('calls', a as number);
        return;
      case NativeEvent.drain:
        // Posted by the I/O thread when it went under the mark; sends since then may have filled
        // the queue again, in which case the wait goes on (as with JsTransport's onWritten check).
        if (this.stagedCount > 0) this.flushStaged();
        else this.push('', 0, false);
        if (this.status[1]! >= this.options.highWaterMark) {
          this.push('', 0, true);
          return;
        }
        this.drainPending = false;
        this.drainOwed = false;
        this.events.onDrain();
        return;
      case NativeEvent.stopped: {
        this.handle.join();
        const waiter = this.stopWaiter;
        this.stopWaiter = null;
        waiter?.(a as number);
        return;
      }
    }
  }
}

/** An error shaped like the ones node:net raises, so both transports report failures alike. */
function systemError(errno: number, syscall: string, address?: string): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(-errno);
  } catch {
    code = `E${errno}`;
  }
  const err = new Error(`${syscall} ${code}${address ? ` ${address}` : ''}`) as NodeJS.ErrnoException & {
    address?: string;
  };
  err.errno = -errno;
  err.code = code;
  err.syscall = syscall;
  if (address) err.address = address;
  return err;
}

export function createNativeTransport(options: TransportOptions, events: TransportEvents): Transport {
  return new NativeTransport(options, events);
}
