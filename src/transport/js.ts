import { existsSync } from 'node:fs';
import * as net from 'node:net';
import { FrameQueue } from './frame-queue';
import type { FrameEncoder } from '../codec';
import { LineSplitter } from './line-splitter';
import { AgentPathWatch } from './path-watch';
import { WATCHED_RETRY_MS, nextRefusedDelay } from './retry';
import type { Transport, TransportCounters, TransportEvents, TransportOptions } from './types';
import { whenRunEnds } from './microtask';

/** Frames joined into one socket.write(); large enough to amortise the call, small enough to re-send. */
const BATCH_BYTES = 64 * 1024;

/**
 * Messages at the start of a synchronous run written one by one when nothing waits. Measured at one
 * run per 1 ms tick (bench/RESULTS.md): a run of two costs less as two writes than as a lone write
 * and a batch of one; from three on, the batch costs less.
 */
const DIRECT_PER_RUN = 2;

/**
 * How long a connection whose write failed waits for the agent's EOF before it is torn down anyway.
 * An agent that closed has its EOF right behind its last frame, so this only bounds a peer that shut
 * down its reading side and stays connected.
 */
const WRITE_ERROR_GRACE_MS = 1000;

type BatchKind = 'telemetry' | 'call' | 'report' | 'control';

interface Batch {
  kind: BatchKind;
  frames: string[];
  /** Characters per frame, as queued. */
  sizes: number[];
  /** Characters in the batch, for the queue bounds. */
  units: number;
  /** UTF-8 bytes in the batch, as written. */
  bytes: number;
  /** Bytes the kernel took during the write() call itself, known to be delivered. */
  syncBytes: number;
  settled: boolean;
}

interface StreamHandle {
  writeQueueSize?: number;
}

type WriteCallback = (error?: Error | null) => void;

/** What the socket's _write did while one write() call ran. */
interface WriteProbe {
  /** _write ran synchronously (the Writable did not buffer the chunk). */
  called: boolean;
  /** It completed synchronously: the kernel took every byte. */
  done: boolean;
  /** It failed synchronously: uv_try_write failed, so none of its bytes went out. */
  failed: boolean;
}

const baseWrites = net.Socket.prototype as unknown as {
  _write(chunk: unknown, encoding: BufferEncoding, cb: WriteCallback): void;
  _writev(chunks: unknown[], cb: WriteCallback): void;
};

/**
 * A net.Socket on which a failed write does not tear the connection down at once. net.Socket forces
 * autoDestroy, so a write error (EPIPE from an agent that wrote its last frames and closed) would
 * destroy the socket, and with it the frames the kernel already holds in our receive buffer, before
 * libuv reads them. Here the error is handed to the Writable only once the read side has ended (EOF
 * or a read error) or the connection closed otherwise, so that everything the agent wrote is read
 * first. The hook is the Writable implementer's _write/_writev; the Writable itself stays stock:
 * meanwhile it holds later writes, which the transport accounts as not delivered.
 */
class AgentSocket extends net.Socket {
  /** Set by the transport around one write() call. */
  probe: WriteProbe | null = null;
  /**
   * Called once, without an error, when the write in progress completes later than its write() call,
   * after the Writable has accounted for it. Set by the transport for a write it gave no callback:
   * a write with a callback that completes at once costs the Writable a process.nextTick (and Node a
   * whole tick queue run) to call it; one without costs nothing more.
   */
  onLateWrite: (() => void) | null = null;
  /** 'close' has been emitted: the handle is gone (socket.closed is already true while it closes). */
  closeEmitted = false;
  private heldError: { error: Error; cb: WriteCallback } | null = null;
  private graceTimer: NodeJS.Timeout | null = null;

  constructor() {
    super();
    const release = () => this.releaseError();
    this.on('end', release);
    this.on('close', () => {
      this.closeEmitted = true;
      release();
    });
  }

  /** The write _write is running: the Writable runs one at a time, its callback before the next. */
  private writeCb: WriteCallback | null = null;
  private writeProbe: WriteProbe | null = null;
  private readonly afterOneWrite = (error?: Error | null): void => {
    const cb = this.writeCb!;
    const probe = this.writeProbe;
    this.writeCb = null;
    this.writeProbe = null;
    this.afterWrite(error, cb, probe);
  };

  override _write(chunk: unknown, encoding: BufferEncoding, cb: WriteCallback): void {
    const probe = this.probe;
    if (probe) probe.called = true;
    this.writeCb = cb;
    this.writeProbe = probe;
    baseWrites._write.call(this, chunk, encoding, this.afterOneWrite);
  }

  override _writev(chunks: Array<{ chunk: unknown; encoding: BufferEncoding }>, cb: WriteCallback): void {
    baseWrites._writev.call(this, chunks, (error) => this.afterWrite(error, cb, null));
  }

  private afterWrite(error: Error | null | undefined, cb: WriteCallback, probe: WriteProbe | null): void {
    const sync = probe !== null && this.probe === probe;
    if (!error) {
      if (sync) probe.done = true;
      // Taken before cb(): what the Writable calls back may write again (a flush, a send() from a
      // 'drain' listener), and a write that is then taken in part sets its own onLateWrite.
      const late = sync ? null : this.onLateWrite;
      if (late !== null) this.onLateWrite = null;
      cb();
      late?.();
      return;
    }
    this.onLateWrite = null;
    if (sync) probe.failed = true;
    if (this.destroyed || this.readableEnded) {
      cb(error);
      return;
    }
    // The Writable allows one write at a time, so there is never more than one error to hold.
    this.heldError = { error, cb };
    this.graceTimer = setTimeout(() => this.releaseError(), WRITE_ERROR_GRACE_MS);
    this.graceTimer.unref();
  }

  private releaseError(): void {
    const held = this.heldError;
    if (!held) return;
    this.heldError = null;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    held.cb(held.error); // the Writable destroys the socket now
  }
}

/** The pure-JS transport on node:net. */
export class JsTransport implements Transport {
  readonly kind = 'js' as const;

  private readonly queue = new FrameQueue();
  /** callAgent() frames and report frames, written ahead of telemetry; bounded together by maxQueueBytes. */
  private readonly calls = new FrameQueue();
  private readonly reports = new FrameQueue();
  private inFlight: Batch[] = [];
  /** Characters of telemetry handed to the socket and not yet confirmed. */
  private inFlightUnits = 0;
  /** Characters of call and report frames handed to the socket and not yet confirmed. */
  private inFlightCallUnits = 0;
  private readonly splitter: LineSplitter;
  private socket: AgentSocket | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Watches the socket path while the agent is away (null until first needed). */
  private pathWatch: AgentPathWatch | null = null;
  /** The last wait after a refused connection (0: none yet); see nextRefusedDelay(). */
  private refusedDelay = 0;
  private hello = '';
  private started = false;
  private isLinked = false;
  private held = false;
  private refed = true;
  private flushQueued = false;
  private needDrain = false;
  private stopping: Promise<void> | null = null;
  private idleWaiter: (() => void) | null = null;
  /**
   * send() calls so far in this synchronous run of the caller. The first DIRECT_PER_RUN of a run are
   * written at once when nothing waits (see send()); the rest of the run is batched and flushed at
   * its end, or at BATCH_BYTES.
   */
  private runSends = 0;
  private readonly endRun = (): void => {
    this.runSends = 0;
  };
  /** Reused by every write (one runs at a time): set by the socket's _write while write() runs. */
  private readonly probe: WriteProbe = { called: false, done: false, failed: false };
  private connections = 0;
  private readonly c: TransportCounters = {
    written: 0,
    bytesWritten: 0,
    buffered: 0,
    bufferedBytes: 0,
    droppedOverflow: 0,
    droppedStop: 0,
    droppedCalls: 0,
    callsWritten: 0,
    callsBuffered: 0,
    reconnects: 0,
    connectErrors: 0,
    oversizeFrames: 0,
  };

  constructor(
    private readonly options: TransportOptions,
    private readonly events: TransportEvents,
  ) {
    this.splitter = new LineSplitter(options.maxFrameBytes, (bytes) => {
      this.c.oversizeFrames++;
      this.events.onOversize(bytes);
    });
  }

  get linked(): boolean {
    return this.isLinked;
  }

  start(hello: string): void {
    if (this.started) return;
    this.hello = hello;
    this.started = true;
    this.connect();
  }

  sendTelemetry(encoder: FrameEncoder, msg: object, channel: string | undefined): boolean {
    return this.send(encoder.telemetry(msg, channel));
  }

  send(frame: string): boolean {
    const sends = this.runSends++;
    if (sends === 0) whenRunEnds(this.endRun);
    // The start of a run, with nothing waiting: straight to the kernel, as a bare socket.write()
    // would, with no queue, batch or flush. Batching only pays when there is a batch.
    if (sends < DIRECT_PER_RUN && this.isLinked && !this.held && this.idleForDirect()) {
      this.writeDirect(frame);
      return this.inFlightUnits < this.options.highWaterMark || this.markDrain();
    }
    // Queue accounting uses the frame's length in characters: it is what the string costs in memory
    // (equal to its UTF-8 size for ASCII) and, unlike Buffer.byteLength, free to compute.
    this.queue.push(frame, frame.length);
    if (this.isLinked) {
      const dropped = this.queue.trimToBytes(this.options.maxQueueBytes);
      if (dropped) this.drop('overflow', dropped);
      if (!this.held) {
        // During a synchronous burst, push full batches to the kernel now rather than at the end of it.
        if (this.queue.bytes >= BATCH_BYTES) this.flush();
        else this.scheduleFlush();
      }
    } else {
      const over = this.queue.length - this.options.maxBufferedMsgs;
      if (over > 0) {
        this.drop('overflow', this.queue.dropOldest(over));
        this.needDrain = true;
        return false;
      }
    }
    if (this.queue.bytes + this.inFlightUnits >= this.options.highWaterMark) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  private markDrain(): false {
    this.needDrain = true;
    return false;
  }

  /** Nothing queued, in flight or pending in the socket: a write now goes to the kernel at once. */
  private idleForDirect(): boolean {
    const socket = this.socket;
    return (
      socket !== null &&
      this.queue.length === 0 &&
      this.inFlight.length === 0 &&
      this.calls.length === 0 &&
      this.reports.length === 0 &&
      socket.writableLength === 0
    );
  }

  /** Write one telemetry frame at once, as writeBatch() would write a batch of one, without the arrays. */
  private writeDirect(frame: string): void {
    const socket = this.socket!;
    if (this.needDrain) {
      this.writeBatch(socket, 'telemetry', [frame], [frame.length]);
      return;
    }
    const bytes = Buffer.byteLength(frame);
    if (!this.writeSettled(socket, 'telemetry', frame, 1, bytes)) {
      this.inFlightAfterWrite(socket, this.track('telemetry', [frame], [frame.length], frame.length, bytes), bytes);
    }
  }

  /** socket.write(data, cb), noting what the socket's _write did during the call. */
  private probedWrite(socket: AgentSocket, data: string, cb: WriteCallback | undefined): WriteProbe {
    const probe = this.probe;
    probe.called = false;
    probe.done = false;
    probe.failed = false;
    socket.probe = probe;
    try {
      socket.write(data, cb);
    } finally {
      socket.probe = null;
    }
    return probe;
  }

  /** A batch handed to the socket: in flight (and counted in the queue bounds) until settled. */
  private track(kind: BatchKind, frames: string[], sizes: number[], units: number, bytes: number): Batch {
    const batch: Batch = { kind, frames, sizes, units, bytes, syncBytes: 0, settled: false };
    this.inFlight.push(batch);
    if (kind === 'telemetry') this.inFlightUnits += units;
    else if (kind === 'call' || kind === 'report') this.inFlightCallUnits += units;
    return batch;
  }

  call(frame: string): boolean {
    if (!this.isLinked || !this.callFits(frame)) {
      this.c.droppedCalls++;
      this.events.onDrop('calls', 1);
      return false;
    }
    this.calls.push(frame, frame.length);
    this.flush();
    return true;
  }

  report(frame: string): void {
    if (!this.isLinked || !this.callFits(frame)) return;
    this.reports.push(frame, frame.length);
    this.flush();
  }

  /** Whether `frame` keeps the call and report frames waiting to be written within maxQueueBytes. */
  private callFits(frame: string): boolean {
    return this.calls.bytes + this.reports.bytes + this.inFlightCallUnits + frame.length <= this.options.maxQueueBytes;
  }

  hold(held: boolean): void {
    this.held = held;
    if (!held) this.scheduleFlush();
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
    let buffered = this.queue.length;
    let callsBuffered = this.calls.length;
    for (const b of this.inFlight) {
      if (b.kind === 'telemetry') buffered += b.frames.length;
      else if (b.kind === 'call') callsBuffered += b.frames.length;
    }
    return {
      ...this.c,
      buffered,
      bufferedBytes: this.queue.bytes + this.inFlightUnits,
      callsBuffered,
    };
  }

  ref(): void {
    this.refed = true;
    this.socket?.ref();
    this.retryTimer?.ref();
  }

  unref(): void {
    this.refed = false;
    this.socket?.unref();
    this.retryTimer?.unref();
  }

  private connect(): void {
    this.retryTimer = null;
    const socket = new AgentSocket();
    socket.connect({ path: this.options.socketPath });
    this.socket = socket;
    if (!this.refed) socket.unref();
    let failure: Error | null = null;
    socket.on('connect', () => this.onConnect(socket));
    socket.on('data', (chunk: Buffer) => {
      const lines = this.splitter.push(chunk);
      if (lines.length) this.events.onFrames(lines);
    });
    socket.on('error', (err) => {
      failure = err;
    });
    socket.on('close', () => this.onClose(socket, failure));
  }

  private onConnect(socket: AgentSocket): void {
    if (this.connections++ > 0) this.c.reconnects++;
    // Linked: no watch needed until the link is lost (an inotify watch is a limited resource).
    this.pathWatch?.close();
    this.refusedDelay = 0;
    this.isLinked = true;
    this.held = false;
    this.splitter.reset();
    this.writeBatch(socket, 'control', [this.hello], [Buffer.byteLength(this.hello)]);
    this.events.onLink();
    this.flush();
  }

  private onClose(socket: AgentSocket, failure: Error | null): void {
    if (socket !== this.socket) return;
    this.socket = null;
    const closedByStop = !this.started || this.stopping !== null;
    if (!this.isLinked) {
      if (!closedByStop) {
        this.c.connectErrors++;
        this.events.onConnectError(failure ?? new Error(`connection to ${this.options.socketPath} closed`));
        this.scheduleRetry((failure as NodeJS.ErrnoException | null)?.code === 'ECONNREFUSED');
      }
      return;
    }
    this.isLinked = false;
    const lostCalls = this.settleInFlight() + this.clearCalls();
    if (closedByStop) {
      this.wakeIdle();
      return;
    }
    const over = this.queue.length - this.options.maxBufferedMsgs;
    if (over > 0) this.drop('overflow', this.queue.dropOldest(over));
    if (lostCalls > 0) this.events.onDrop('calls', lostCalls);
    this.wakeIdle();
    this.events.onUnlink(failure);
    // The agent may still listen (it closed this connection only) or come back at once: retry soon.
    this.scheduleRetry(true);
  }

  /**
   * The connection is gone: telemetry the kernel did not take is queued again, whole, in order; call
   * frames it did not take are counted as dropped (returned: how many).
   */
  private settleInFlight(): number {
    let lostCalls = 0;
    const frames: string[] = [];
    const sizes: number[] = [];
    for (const batch of this.inFlight) {
      batch.settled = true;
      let delivered = batch.syncBytes;
      for (let i = 0; i < batch.frames.length; i++) {
        const bytes = delivered > 0 ? Buffer.byteLength(batch.frames[i]!) : Infinity;
        if (delivered >= bytes) {
          delivered -= bytes;
          this.countWritten(batch.kind, 1, bytes);
          continue;
        }
        delivered = 0;
        if (batch.kind === 'telemetry') {
          frames.push(batch.frames[i]!);
          sizes.push(batch.sizes[i]!);
        } else if (batch.kind === 'call') {
          lostCalls++;
        }
      }
    }
    this.inFlight = [];
    this.inFlightUnits = 0;
    this.inFlightCallUnits = 0;
    this.queue.unshift(frames, sizes);
    this.c.droppedCalls += lostCalls;
    return lostCalls;
  }

  /** Call and report frames never written are not kept across connections: count the calls as dropped. */
  private clearCalls(): number {
    const lost = this.calls.clear();
    this.reports.clear();
    this.c.droppedCalls += lost;
    return lost;
  }

  /**
   * Wait for the next connection attempt. With the socket path watched, a change of the path starts
   * one at once (pathChanged()); until then a refused connection (the socket file is there: the agent
   * is between bind() and listen(), or the file is stale) is retried after 1, 4, 16, ... ms, and
   * anything else after WATCHED_RETRY_MS. Without a watch: every reconnectIntervalMs, as before.
   */
  private scheduleRetry(refused: boolean): void {
    let delay = this.options.reconnectIntervalMs;
    if (this.watchPath()) {
      // The agent may have bound its socket between the failed attempt and the watch: no event
      // would come for that, so look once, now that the watch is in place.
      if (!refused && existsSync(this.options.socketPath)) refused = true;
      this.refusedDelay = refused ? nextRefusedDelay(this.refusedDelay) : 0;
      delay = refused ? this.refusedDelay : WATCHED_RETRY_MS;
    }
    this.retryTimer = setTimeout(() => this.connect(), delay);
    if (!this.refed) this.retryTimer.unref();
  }

  private watchPath(): boolean {
    this.pathWatch ??= new AgentPathWatch(this.options.socketPath, () => this.pathChanged());
    return this.pathWatch.arm();
  }

  /** The socket path changed while we wait to retry: try now. */
  private pathChanged(): void {
    const timer = this.retryTimer;
    if (timer === null || !this.started) return;
    clearTimeout(timer);
    this.refusedDelay = 0;
    this.connect();
  }

  private scheduleFlush(): void {
    if (this.flushQueued || !this.isLinked) return;
    this.flushQueued = true;
    whenRunEnds(this.queuedFlush);
  }

  private readonly queuedFlush = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  private flush(): void {
    const socket = this.socket;
    if (!this.isLinked || !socket) return;
    // Hand the socket a batch only while it has nothing pending: then libuv writes it at once and we
    // learn how much the kernel took (syncBytes). A batch queued behind a pending write would be
    // written later, in part, and merged with others into one writev, with no way to learn how much
    // of it was delivered if the connection broke: all of it would be re-sent, duplicating up to the
    // whole in-flight window at the agent. Kept in our own queues instead, its fate stays known and
    // the queues stay bounded (calls included: the Writable's own buffer has no bound).
    // Calls and reports go first, at the next frame boundary; they are written even while held.
    while (socket.writableLength === 0) {
      if (this.calls.length > 0) this.writeQueued(socket, 'call', this.calls);
      else if (this.reports.length > 0) this.writeQueued(socket, 'report', this.reports);
      else if (this.queue.length > 0 && !this.held) this.writeQueued(socket, 'telemetry', this.queue);
      else break;
    }
  }

  private writeQueued(socket: AgentSocket, kind: BatchKind, queue: FrameQueue): void {
    const { frames, sizes } = queue.take(BATCH_BYTES);
    this.writeBatch(socket, kind, frames, sizes);
  }

  /**
   * Hand one batch to the socket. With no 'drain' owed, the write has no callback (see
   * AgentSocket.onLateWrite): a batch the kernel takes whole during write() is counted as written
   * there; one taken in part, failed, or refused by the Writable (destroyed or ended) is in flight
   * until settled, when libuv completes it or at the close. Owed a 'drain', which comes from a
   * write's callback (never from inside send()), the batch is in flight from the start and its
   * callback settles it.
   */
  private writeBatch(socket: AgentSocket, kind: BatchKind, frames: string[], sizes: number[]): void {
    let units = 0;
    for (const s of sizes) units += s;
    const data = frames.length === 1 ? frames[0]! : frames.join('');
    const bytes = Buffer.byteLength(data);
    if (!this.needDrain) {
      if (!this.writeSettled(socket, kind, data, frames.length, bytes)) {
        this.inFlightAfterWrite(socket, this.track(kind, frames, sizes, units, bytes), bytes);
      }
      return;
    }
    const batch = this.track(kind, frames, sizes, units, bytes);
    const probe = this.probedWrite(socket, data, (err) => this.onWritten(socket, batch, err));
    batch.syncBytes = this.deliveredAtOnce(socket, probe, bytes);
  }

  /** socket.write(data) with no callback; true, with the batch counted as written, when the kernel took all of it. */
  private writeSettled(socket: AgentSocket, kind: BatchKind, data: string, frames: number, bytes: number): boolean {
    if (!this.probedWrite(socket, data, undefined).done) return false;
    this.countWritten(kind, frames, bytes);
    return true;
  }

  /** The write writeSettled() just made did not complete: `batch` is in flight, settled as any batch. */
  private inFlightAfterWrite(socket: AgentSocket, batch: Batch, bytes: number): void {
    const probe = this.probe;
    batch.syncBytes = this.deliveredAtOnce(socket, probe, bytes);
    // libuv writes the rest of a partial write later; a failed or refused one is settled at the close.
    if (probe.called && !probe.failed) socket.onLateWrite = () => this.onWritten(socket, batch, null);
  }

  /**
   * Bytes of a write() known to be in the kernel as soon as it returns. Nothing when the Writable
   * buffered it (it goes out later, merged, its fate unknown) or when the write failed at once (an
   * error from uv_try_write means no byte of it was written). All when it completed at once. When
   * libuv took part of it and queued the rest, the rest is its private write queue size: there is no
   * public figure for a partial write, so that field is read here only, right after the write, when
   * it holds exactly this write's remainder (the socket had nothing else pending); absent, nothing
   * counts as delivered and the batch is re-sent whole should the connection break.
   */
  private deliveredAtOnce(socket: AgentSocket, probe: WriteProbe, bytes: number): number {
    if (!probe.called || probe.failed) return 0;
    if (probe.done) return bytes;
    const pending = (socket as unknown as { _handle?: StreamHandle | null })._handle?.writeQueueSize;
    return typeof pending === 'number' && pending <= bytes ? bytes - pending : 0;
  }

  private onWritten(socket: AgentSocket, batch: Batch, err: Error | null | undefined): void {
    // A failed write is accounted by settleInFlight() when the socket closes. So is a "successful" one
    // reported after the socket was destroyed: Node calls back without an error for a write that
    // libuv cancelled at the close.
    if (batch.settled || err || socket.destroyed) return;
    batch.settled = true;
    const i = this.inFlight.indexOf(batch);
    if (i >= 0) this.inFlight.splice(i, 1);
    if (batch.kind === 'telemetry') this.inFlightUnits -= batch.units;
    else if (batch.kind === 'call' || batch.kind === 'report') this.inFlightCallUnits -= batch.units;
    this.countWritten(batch.kind, batch.frames.length, batch.bytes);
    if (this.queue.length > 0 || this.calls.length > 0 || this.reports.length > 0) this.flush();
    if (this.needDrain && this.isLinked && this.queue.bytes + this.inFlightUnits < this.options.highWaterMark) {
      this.needDrain = false;
      this.events.onDrain();
    }
    if (this.inFlight.length === 0 && (this.queue.length === 0 || this.held) && this.calls.length === 0 && this.reports.length === 0) {
      this.wakeIdle();
    }
  }

  private countWritten(kind: BatchKind, frames: number, bytes: number): void {
    this.c.bytesWritten += bytes;
    if (kind === 'telemetry') this.c.written += frames;
    else if (kind === 'call') this.c.callsWritten += frames;
  }

  private drop(reason: 'overflow' | 'stop', count: number): void {
    if (count <= 0) return;
    if (reason === 'overflow') this.c.droppedOverflow += count;
    else this.c.droppedStop += count;
    this.events.onDrop(reason, count);
  }

  private wakeIdle(): void {
    const waiter = this.idleWaiter;
    this.idleWaiter = null;
    waiter?.();
  }

  private async doStop(goodbye: string, timeoutMs: number): Promise<void> {
    this.started = false;
    this.pathWatch?.close();
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    const deadline = Date.now() + timeoutMs;
    const socket = this.socket;
    if (socket && this.isLinked) {
      this.held = false;
      this.flush();
      const drained = await this.waitIdle(deadline);
      if (drained && this.isLinked) {
        this.writeBatch(socket, 'control', [goodbye], [Buffer.byteLength(goodbye)]);
        // Once our bytes sit in the agent's receive queue they survive our close: no need to wait for its FIN.
        socket.end(() => socket.destroy());
      }
      await this.waitClosed(socket, deadline);
    } else if (socket) {
      socket.destroy();
      await this.waitClosed(socket, deadline);
    }
    this.socket = null;
    this.isLinked = false;
    this.held = false;
    // Calls lost at stop are counted, not reported: the application asked for the stop.
    this.settleInFlight();
    this.clearCalls();
    this.drop('stop', this.queue.clear());
    this.splitter.reset();
  }

  private waitIdle(deadline: number): Promise<boolean> {
    return new Promise((resolve) => {
      const idle = () =>
        this.inFlight.length === 0 && this.queue.length === 0 && this.calls.length === 0 && this.reports.length === 0;
      if (idle() || !this.isLinked) return resolve(idle());
      const timer = setTimeout(() => {
        this.idleWaiter = null;
        resolve(false);
      }, Math.max(0, deadline - Date.now()));
      this.idleWaiter = () => {
        clearTimeout(timer);
        resolve(idle());
      };
    });
  }

  private waitClosed(socket: AgentSocket, deadline: number): Promise<void> {
    return new Promise((resolve) => {
      if (socket.closeEmitted) return resolve();
      const timer = setTimeout(() => socket.destroy(), Math.max(0, deadline - Date.now()));
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
