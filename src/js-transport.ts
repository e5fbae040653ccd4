import * as net from 'node:net';
import { FrameQueue } from './frame-queue';
import { LineSplitter } from './line-splitter';
import type { Transport, TransportCounters, TransportEvents, TransportOptions } from './transport';

/** Frames joined into one socket.write(); large enough to amortise the call, small enough to re-send. */
const BATCH_BYTES = 64 * 1024;

type BatchKind = 'telemetry' | 'call' | 'control';

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

/** The pure-JS transport on node:net. */
export class JsTransport implements Transport {
  readonly kind = 'js' as const;

  private readonly queue = new FrameQueue();
  private calls: string[] = [];
  private inFlight: Batch[] = [];
  /** Characters of telemetry handed to the socket and not yet confirmed. */
  private inFlightUnits = 0;
  private readonly splitter: LineSplitter;
  private socket: net.Socket | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private hello = '';
  private started = false;
  private isLinked = false;
  private held = false;
  private refed = true;
  private flushQueued = false;
  private needDrain = false;
  private stopping: Promise<void> | null = null;
  private idleWaiter: (() => void) | null = null;
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

  send(frame: string): boolean {
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

  call(frame: string): boolean {
    if (!this.isLinked) {
      this.c.droppedCalls++;
      this.events.onDrop('calls', 1);
      return false;
    }
    this.calls.push(frame);
    this.flush();
    return true;
  }

  report(frame: string): void {
    if (!this.isLinked) return;
    this.calls.push(frame);
    this.flush();
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
    for (const b of this.inFlight) if (b.kind === 'telemetry') buffered += b.frames.length;
    return {
      ...this.c,
      buffered,
      bufferedBytes: this.queue.bytes + this.inFlightUnits,
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
    const socket = net.createConnection({ path: this.options.socketPath });
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

  private onConnect(socket: net.Socket): void {
    if (this.connections++ > 0) this.c.reconnects++;
    this.isLinked = true;
    this.held = false;
    this.splitter.reset();
    this.writeBatch(socket, 'control', [this.hello], [Buffer.byteLength(this.hello)]);
    this.events.onLink();
    this.flush();
  }

  private onClose(socket: net.Socket, failure: Error | null): void {
    if (socket !== this.socket) return;
    this.socket = null;
    const closedByStop = !this.started || this.stopping !== null;
    if (!this.isLinked) {
      if (!closedByStop) {
        this.c.connectErrors++;
        this.events.onConnectError(failure ?? new Error(`connection to ${this.options.socketPath} closed`));
        this.scheduleRetry();
      }
      return;
    }
    this.isLinked = false;
    this.settleInFlight();
    if (closedByStop) {
      this.wakeIdle();
      return;
    }
    const over = this.queue.length - this.options.maxBufferedMsgs;
    if (over > 0) this.drop('overflow', this.queue.dropOldest(over));
    if (this.calls.length) {
      this.c.droppedCalls += this.calls.length;
      this.calls = [];
    }
    this.wakeIdle();
    this.events.onUnlink(failure);
    this.scheduleRetry();
  }

  /** The connection is gone: frames the kernel did not take are queued again, whole, in order. */
  private settleInFlight(): void {
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
          this.c.droppedCalls++;
        }
      }
    }
    this.inFlight = [];
    this.inFlightUnits = 0;
    this.queue.unshift(frames, sizes);
  }

  private scheduleRetry(): void {
    this.retryTimer = setTimeout(() => this.connect(), this.options.reconnectIntervalMs);
    if (!this.refed) this.retryTimer.unref();
  }

  private scheduleFlush(): void {
    if (this.flushQueued || !this.isLinked) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  private flush(): void {
    const socket = this.socket;
    if (!this.isLinked || !socket) return;
    if (this.calls.length) {
      const calls = this.calls;
      this.calls = [];
      this.writeBatch(socket, 'call', calls, calls.map((f) => f.length));
    }
    if (this.held) return;
    // Hand the socket a batch only while it has nothing pending: then libuv writes it at once and we
    // learn how much the kernel took (syncBytes). A batch queued behind a pending write would be
    // written later, in part, and merged with others into one writev, with no way to learn how much
    // of it was delivered if the connection broke: all of it would be re-sent, duplicating up to the
    // whole in-flight window at the agent. Kept in our own queue instead, its fate stays known.
    while (this.queue.length > 0 && socket.writableLength === 0) {
      const { frames, sizes } = this.queue.take(BATCH_BYTES);
      this.writeBatch(socket, 'telemetry', frames, sizes);
    }
  }

  private writeBatch(socket: net.Socket, kind: BatchKind, frames: string[], sizes: number[]): void {
    let units = 0;
    for (const s of sizes) units += s;
    const data = frames.length === 1 ? frames[0]! : frames.join('');
    const bytes = Buffer.byteLength(data);
    const batch: Batch = { kind, frames, sizes, units, bytes, syncBytes: 0, settled: false };
    this.inFlight.push(batch);
    if (kind === 'telemetry') this.inFlightUnits += units;
    const idleBefore = socket.writableLength === 0;
    socket.write(data, (err) => this.onWritten(batch, err));
    if (idleBefore && !batch.settled) {
      // libuv writes what the kernel takes at once and queues the rest; what it took is delivered.
      const pending = (socket as unknown as { _handle?: StreamHandle })._handle?.writeQueueSize;
      batch.syncBytes = typeof pending === 'number' ? Math.max(0, bytes - pending) : 0;
    }
  }

  private onWritten(batch: Batch, err: Error | null | undefined): void {
    if (batch.settled || err) return; // settleInFlight() accounts for it when the socket closes
    batch.settled = true;
    const i = this.inFlight.indexOf(batch);
    if (i >= 0) this.inFlight.splice(i, 1);
    if (batch.kind === 'telemetry') this.inFlightUnits -= batch.units;
    this.countWritten(batch.kind, batch.frames.length, batch.bytes);
    if (this.queue.length > 0) this.flush();
    if (this.needDrain && this.isLinked && this.queue.bytes + this.inFlightUnits < this.options.highWaterMark) {
      this.needDrain = false;
      this.events.onDrain();
    }
    if (this.inFlight.length === 0 && (this.queue.length === 0 || this.held) && this.calls.length === 0) this.wakeIdle();
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
    this.settleInFlight();
    if (this.calls.length) {
      this.c.droppedCalls += this.calls.length;
      this.calls = [];
    }
    this.drop('stop', this.queue.clear());
    this.splitter.reset();
  }

  private waitIdle(deadline: number): Promise<boolean> {
    return new Promise((resolve) => {
      const idle = () => this.inFlight.length === 0 && this.queue.length === 0 && this.calls.length === 0;
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

  private waitClosed(socket: net.Socket, deadline: number): Promise<void> {
    return new Promise((resolve) => {
      if (socket.closed) return resolve();
      const timer = setTimeout(() => socket.destroy(), Math.max(0, deadline - Date.now()));
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
