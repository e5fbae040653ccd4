import { EventEmitter } from 'node:events';
import { AgentStatusMachine } from './agent-status';
import { tell, watched } from './diagnostics';
import { FrameEncoder, decodeFrame, isPlainObject, versionAtLeast } from './codec';
import { DisconnectedSDK, InvalidAgentVersion } from './errors';
import { createTransport } from './transport/select';
import { describe } from './describe';
import { type IottlySDKOptions, type ResolvedOptions, type TransportChoice, resolveOptions } from './options';
import type { DropReason, Transport, TransportEvents, TransportKind } from './transport/types';
import type { AgentStatus, CommandCallback, CommandDropReason, ConnectionStatus, IottlySDKEvents, SDKStats } from './types';
import { type ResolvedWorkerHandler, type WorkerHandler, isWorkerHandler, resolveWorkerHandler } from './workers/handler';
import type { WorkerPool, WorkerSink } from './workers/pool';
import { SDK_VERSION } from './version';

const CALL_MIN_AGENT: [number, number, number] = [1, 8, 0];
const DROP_EVENT_INTERVAL_MS = 1000;

/** The application's side of the iottly agent's SDK socket. */
export class IottlySDK extends EventEmitter<IottlySDKEvents> {
  readonly name: string;
  private readonly options: ResolvedOptions;
  private readonly encoder: FrameEncoder;
  private readonly transportImpl: Transport;
  private readonly subscriptions = new Map<string, CommandCallback | ResolvedWorkerHandler>();
  /** Created by the first worker handler subscription; an app without one never loads piscina. */
  private workerPool: WorkerPool | null = null;

  private readonly status: AgentStatusMachine;
  private holdTimer: NodeJS.Timeout | null = null;
  private running = false;
  private stopPromise: Promise<void> | null = null;
  /** start() was called while stop() was in progress (and no stop() since): start once it is done. */
  private startAfterStop = false;

  private accepted = 0;
  private callsAccepted = 0;
  private framesReceived = 0;
  private framesSkipped = 0;
  private framesIgnored = 0;
  private commandsDispatched = 0;
  private commandsUnhandled = 0;
  private commandsDropped = 0;
  private callbackErrors = 0;
  private lastConnectError = '';
  /** Codes of persistent connection errors already warned about. */
  private readonly warned = new Set<string>();
  private pendingDrops: Partial<Record<DropReason, number>> = {};
  private totalDrops = 0;
  private dropTimer: NodeJS.Timeout | null = null;
  private lastDropEvent = 0;

  constructor(name: string, options?: IottlySDKOptions | string) {
    super();
    if (typeof name !== 'string' || name.length === 0) {
      throw new TypeError(`name must be a non-empty string, got ${describe(name)}`);
    }
    this.name = name;
    this.options = resolveOptions(options);
    this.encoder = new FrameEncoder(name);
    this.status = new AgentStatusMachine(this.options.handshakeTimeoutMs, {
      status: (status) => this.agentStatus(status),
    });
    this.transportImpl = createTransport(this.transportChoice(), this.options, this.transportEvents());
  }

  /** Which transport this instance uses. */
  get transport(): TransportKind {
    return this.transportImpl.kind;
  }

  /** True while the socket to the agent is connected (including the wait for sdkinit). */
  get linked(): boolean {
    return this.transportImpl.linked;
  }

  /** The agent's version from its last sdkinit; null when unknown or older than 1.8.0. */
  get agentVersion(): string | null {
    return this.status.version;
  }

  /**
   * Register `callback` for commands of `cmdType`; a second subscribe for the same type replaces it.
   * A function runs on the main thread; a WorkerHandler (see workerHandler()) runs in a worker thread.
   */
  subscribe<P = unknown>(cmdType: string, callback: CommandCallback<P> | WorkerHandler): void {
    if (typeof cmdType !== 'string' || cmdType.length === 0) {
      throw new TypeError(`cmdType must be a non-empty string, got ${describe(cmdType)}`);
    }
    if (isWorkerHandler(callback)) {
      const handler = resolveWorkerHandler(callback);
      this.workers().warm();
      this.subscriptions.set(cmdType, handler);
      return;
    }
    if (typeof callback !== 'function') {
      throw new TypeError(`callback must be a function or a worker handler, got ${describe(callback)}`);
    }
    this.subscriptions.set(cmdType, callback);
  }

  /** Remove the callback for `cmdType`; returns whether one was registered. */
  unsubscribe(cmdType: string): boolean {
    return this.subscriptions.delete(cmdType);
  }

  /** Begin connecting to the agent in the background; returns at once. */
  start(): void {
    if (this.stopPromise) {
      this.startAfterStop = true;
      return;
    }
    if (this.running) return;
    this.running = true;
    this.status.start();
    this.workerPool?.warm();
    this.transportImpl.start(this.encoder.hello(SDK_VERSION));
  }

  /**
   * Send `msg` to iottly, optionally to `channel`. Never blocks; while the agent is away the message
   * is buffered (bounded). Returns false when the caller should slow down until 'drain'.
   */
  send(msg: object, channel?: string | null): boolean {
    if (!isPlainObject(msg)) throw new TypeError(`msg must be a plain object, got ${describe(msg)}`);
    if (channel !== undefined && channel !== null && typeof channel !== 'string') {
      throw new TypeError(`channel must be a string, got ${describe(channel)}`);
    }
    // Counted before the transport's own accounting, which a 'drop' diagnostics subscriber may read
    // during the call; a message that cannot be serialised is queued nowhere and not counted.
    this.accepted++;
    try {
      return this.transportImpl.sendTelemetry(this.encoder, msg, channel ? channel : undefined);
    } catch (err) {
      this.accepted--;
      throw err;
    }
  }

  /** Run the user-defined script `cmd` on the agent (agent >= 1.8.0, linked now). */
  callAgent(cmd: string, args?: object): void {
    // A programming error is reported as such whatever the state.
    if (typeof cmd !== 'string' || cmd.length === 0) {
      throw new TypeError(`cmd must be a non-empty string, got ${describe(cmd)}`);
    }
    if (args !== undefined && args !== null && !isPlainObject(args)) {
      throw new TypeError(`args must be a plain object, got ${describe(args)}`);
    }
    const version = this.status.version;
    if (version === null || !versionAtLeast(version, CALL_MIN_AGENT)) {
      let why = `the agent is ${version}`;
      if (version === null) {
        why = this.status.metUnversioned
          ? 'the agent did not announce a version (agents before 1.8.0 do not)'
          : 'no agent has announced its version yet (it does so when the SDK links to it)';
      }
      throw new InvalidAgentVersion(`callAgent needs an iottly agent >= 1.8.0; ${why}`);
    }
    // While stop() runs, the goodbye is the last frame the agent gets: a call could not follow it.
    if (!this.transportImpl.linked || !this.running) throw new DisconnectedSDK();
    const frame = this.encoder.call(cmd, args ?? {});
    this.callsAccepted++;
    this.transportImpl.call(frame);
  }

  /** The documented snake_case name of callAgent(). */
  call_agent(cmd: string, args?: object): void {
    this.callAgent(cmd, args);
  }

  /**
   * Write what is queued (up to stopTimeoutMs), say goodbye, close. Resolves when nothing of the SDK
   * is left running. Idempotent; start() may be called again afterwards.
   */
  stop(): Promise<void> {
    this.startAfterStop = false;
    if (!this.stopPromise) {
      this.stopPromise = this.doStop().finally(() => {
        this.stopPromise = null;
        if (this.startAfterStop) {
          this.startAfterStop = false;
          this.start();
        }
      });
    }
    return this.stopPromise;
  }

  stats(): SDKStats {
    const t = this.transportImpl.counters();
    return {
      transport: this.transportImpl.kind,
      accepted: this.accepted,
      written: t.written,
      dropped: { overflow: t.droppedOverflow, stop: t.droppedStop, total: t.droppedOverflow + t.droppedStop },
      buffered: t.buffered,
      bufferedBytes: t.bufferedBytes,
      bytesWritten: t.bytesWritten,
      framesReceived: this.framesReceived,
      framesSkipped: this.framesSkipped + t.oversizeFrames,
      framesIgnored: this.framesIgnored,
      commandsDispatched: this.commandsDispatched,
      commandsUnhandled: this.commandsUnhandled,
      commandsDropped: this.commandsDropped,
      callsAccepted: this.callsAccepted,
      callsWritten: t.callsWritten,
      callsDropped: t.droppedCalls,
      callsBuffered: t.callsBuffered,
      reconnects: t.reconnects,
      connectErrors: t.connectErrors,
      callbackErrors: this.callbackErrors,
    };
  }

  /** `await using sdk = new IottlySDK(...)`: stop() when the scope ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /** Let the process exit while the SDK is the only thing keeping it alive. */
  unref(): this {
    this.transportImpl.unref();
    return this;
  }

  ref(): this {
    this.transportImpl.ref();
    return this;
  }

  /** Overridden by the 'iottly-sdk/js' entry point to pin the JS transport. */
  protected transportChoice(): TransportChoice {
    return this.options.transport;
  }

  private async doStop(): Promise<void> {
    this.running = false;
    this.status.stopping();
    this.clearHold();
    try {
      // Worker handlers first, so that what they send or report on the way out is still written.
      if (this.workerPool) await this.workerPool.stop(this.options.stopTimeoutMs);
    } finally {
      await this.transportImpl.stop(this.encoder.goodbye(), this.options.stopTimeoutMs);
      if (this.dropTimer) {
        clearTimeout(this.dropTimer);
        this.dropTimer = null;
      }
      this.emitDrops();
      this.status.stopped();
    }
  }

  private transportEvents(): TransportEvents {
    return {
      onLink: () => {
        tell('link', { sdk: this, socketPath: this.options.socketPath }, () => `${this.name}: linked to ${this.options.socketPath}`);
        this.lastConnectError = '';
        this.clearHold();
        this.status.link();
      },
      onUnlink: (error) => {
        tell('unlink', { sdk: this, socketPath: this.options.socketPath, error: error ?? null }, () => `${this.name}: link lost${error ? ` (${error.message})` : ''}`);
        this.clearHold();
        this.status.unlink();
      },
      onConnectError: (error) => {
        if (watched('connectError')) tell('connectError', { sdk: this, socketPath: this.options.socketPath, error }, () => `${this.name}: ${error.message}`);
        const key = `${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`;
        if (key === this.lastConnectError) return;
        this.lastConnectError = key;
        if (this.listenerCount('connectError') === 0) this.warnPersistent(error);
        this.emitUser('connectError', error);
      },
      onFrames: (frames) => {
        for (const frame of frames) this.handleFrame(frame);
      },
      onOversize: (bytes) => {
        if (watched('frameSkipped')) {
          tell('frameSkipped', { sdk: this, reason: 'frame longer than maxFrameBytes', bytes }, () => `${this.name}: skipped a frame of ${bytes} bytes (over maxFrameBytes)`);
        }
        this.framesReceived++;
        this.emitUser('protocolError', { reason: 'frame longer than maxFrameBytes', bytes, sample: '' });
      },
      onDrop: (reason, count) => this.noteDrop(reason, count),
      onDrain: () => {
        this.emitUser('drain');
      },
    };
  }

  private handleFrame(line: Buffer): void {
    this.framesReceived++;
    const frame = decodeFrame(line);
    switch (frame.kind) {
      case 'sdkinit':
        this.status.sdkinit(frame.version);
        return;
      case 'agentstatus':
        if (this.running) this.holdWrites(frame.status === 'stopping');
        this.status.agentReported(frame.status);
        return;
      case 'connectionstatus':
        this.connectionStatus(frame.status);
        return;
      case 'command': {
        const callback = this.subscriptions.get(frame.cmdType);
        if (!callback) {
          this.commandsUnhandled++;
          return;
        }
        this.commandsDispatched++;
        if (typeof callback === 'function') this.invoke(`command:${frame.cmdType}`, callback, frame.params);
        else this.workers().dispatch(frame.cmdType, callback, line);
        return;
      }
      case 'unknown':
        this.framesIgnored++;
        return;
      case 'invalid':
        if (watched('frameSkipped')) tell('frameSkipped', { sdk: this, reason: frame.reason, bytes: line.length }, () => `${this.name}: skipped a frame (${frame.reason})`);
        this.framesSkipped++;
        this.emitUser('protocolError', {
          reason: frame.reason,
          bytes: line.length,
          sample: line.subarray(0, 200).toString('utf8'),
        });
        return;
    }
  }

  private agentStatus(status: AgentStatus): void {
    const cb = this.options.onAgentStatusChanged;
    if (cb) this.invoke('agentStatus', cb, status);
    this.emitSafely('agentStatus', 'agentStatus', status);
  }

  private connectionStatus(status: ConnectionStatus): void {
    const cb = this.options.onConnectionStatusChanged;
    if (cb) this.invoke('connectionStatus', cb, status);
    this.emitSafely('connectionStatus', 'connectionStatus', status);
  }

  private emitSafely<K extends 'agentStatus' | 'connectionStatus'>(event: K, source: string, status: string): void {
    try {
      (this.emit as (e: string, s: string) => boolean)(event, status);
    } catch (err) {
      this.callbackFailed(source, err);
    }
  }

  /** Run a user callback; a throw or a rejected promise is reported to the agent, never propagated. */
  private invoke<A>(source: string, fn: (arg: A) => unknown, arg: A): void {
    let result: unknown;
    try {
      result = fn(arg);
    } catch (err) {
      this.callbackFailed(source, err);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, (err: unknown) => this.callbackFailed(source, err));
    }
  }

  private workers(): WorkerPool {
    if (!this.workerPool) {
      // Required here, not imported at the top: loading piscina is the cost only worker handlers pay.
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const { WorkerPool: Pool } = require('./workers/pool') as typeof import('./workers/pool');
      const sink: WorkerSink = {
        sendJson: (json, channel) => {
          this.accepted++;
          this.transportImpl.send(this.encoder.telemetryJson(json, channel));
        },
        failed: (source, err) => this.callbackFailed(source, err),
        dropped: (cmdType, reason) => this.commandDropped(cmdType, reason),
      };
      this.workerPool = new Pool(this.options.workers, sink);
    }
    return this.workerPool;
  }

  private commandDropped(cmdType: string, reason: CommandDropReason): void {
    this.commandsDropped++;
    try {
      this.emit('commandDropped', { cmdType, reason });
    } catch (err) {
      this.callbackFailed('commandDropped', err);
    }
  }

  /**
   * Emit an event whose listeners are the application's code, not callbacks reported to the agent:
   * a listener that throws must not leave the SDK half way through what it was doing (a reconnect,
   * a batch of frames, stop()), so its exception is raised again from a fresh stack on the next
   * tick, an ordinary uncaught exception as a node:net event listener's would be.
   */
  private emitUser<K extends 'connectError' | 'protocolError' | 'drain' | 'drop' | 'callbackError'>(
    event: K,
    ...args: IottlySDKEvents[K]
  ): void {
    try {
      (this.emit as (e: K, ...a: IottlySDKEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      process.nextTick(rethrow, err);
    }
  }

  /**
   * An error that retrying cannot clear by itself, with nobody listening to 'connectError': say so
   * once per code, as a process warning, rather than retry in silence forever.
   */
  private warnPersistent(error: Error): void {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined || !PERSISTENT_CONNECT_ERRORS.has(code) || this.warned.has(code)) return;
    this.warned.add(code);
    process.emitWarning(
      `iottly-sdk '${this.name}' cannot connect to ${this.options.socketPath}: ${error.message}. It keeps retrying, ` +
        `but this does not clear by itself (${PERSISTENT_CONNECT_ERRORS.get(code)}). Listen to 'connectError' to handle it.`,
      { code: 'IOTTLY_SDK_CONNECT' },
    );
  }

  private callbackFailed(source: string, err: unknown): void {
    this.callbackErrors++;
    const type = err instanceof Error ? errorClassName(err) : typeof err;
    const message = safeString(err instanceof Error ? err.message : err);
    if (this.transportImpl.linked) this.transportImpl.report(this.encoder.error(type, message));
    // Not reported to the agent in turn: a throwing 'callbackError' listener must not loop back here.
    this.emitUser('callbackError', { source, error: err });
  }

  private noteDrop(reason: DropReason, count: number): void {
    // Once per send() while the agent is away and the buffer full: nothing is built unless watched.
    if (watched('drop')) tell('drop', { sdk: this, reason, count }, () => `${this.name}: dropped ${count} (${reason})`);
    this.pendingDrops[reason] = (this.pendingDrops[reason] ?? 0) + count;
    this.totalDrops += count;
    if (this.dropTimer) return;
    const wait = Math.max(0, this.lastDropEvent + DROP_EVENT_INTERVAL_MS - Date.now());
    this.dropTimer = setTimeout(() => {
      this.dropTimer = null;
      this.emitDrops();
    }, wait);
    this.dropTimer.unref();
  }

  private emitDrops(): void {
    if (Object.keys(this.pendingDrops).length === 0) return;
    const counts = this.pendingDrops;
    this.pendingDrops = {};
    this.lastDropEvent = Date.now();
    this.emitUser('drop', { counts, total: this.totalDrops });
  }

  /**
   * A scheduled reboot: keep telemetry queued instead of writing what the agent may never read. An
   * agent that says 'stopping' and then stays up gets it after stoppingHoldMs.
   */
  private holdWrites(held: boolean): void {
    this.clearHold();
    this.transportImpl.hold(held);
    if (!held) return;
    this.holdTimer = setTimeout(() => {
      this.holdTimer = null;
      this.transportImpl.hold(false);
    }, this.options.stoppingHoldMs);
    this.holdTimer.unref();
  }

  private clearHold(): void {
    if (this.holdTimer) {
      clearTimeout(this.holdTimer);
      this.holdTimer = null;
    }
  }
}

/** Connection errors that no retry clears, and what would. */
const PERSISTENT_CONNECT_ERRORS = new Map<string, string>([
  ['EACCES', 'the process may not open the socket: run it as a user the agent lets in'],
  ['EPERM', 'the process may not open the socket: run it as a user the agent lets in'],
  ['ENOTDIR', 'a component of the path is a file, not a directory: check socketPath'],
  ['ELOOP', 'the path has a symbolic link loop: check socketPath'],
  ['ENAMETOOLONG', 'the path is too long: check socketPath'],
]);

function rethrow(err: unknown): never {
  throw err;
}

/**
 * The error's class name, as protocol.md asks: `name` when the class sets one, else the constructor's
 * name (a subclass that does not set `name` inherits 'Error' from Error.prototype).
 */
function errorClassName(err: Error): string {
  const ctor = (err.constructor as { name?: unknown } | undefined)?.name;
  if (err.name && err.name !== 'Error') return err.name;
  return typeof ctor === 'string' && ctor.length > 0 ? ctor : err.name || 'Error';
}

/** String(value), except that a value which cannot be converted (a null-prototype object, a throwing toString) never throws. */
function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
