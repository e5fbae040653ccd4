// The agent side of the iottly SDK socket (see protocol.md): a Unix socket server that speaks the
// agent's half of the protocol and records what SDK clients send, for tests, benchmarks and demos.

import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as nodeBuffer from 'node:buffer';
import { TextDecoder } from 'node:util';
import { Connection, label, type SimClient } from './connection';
import {
  RecordLog,
  zeroCounts,
  type CallRecord,
  type ErrorRecord,
  type FrameRecord,
  type InvalidRecord,
  type SimCounts,
  type TelemetryRecord,
} from './records';
import { flapMqtt as runFlapMqtt, reboot as runReboot, type RebootOptions, type ScenarioTarget } from './scenarios';
import { isCertainTelemetry } from './scanner';

export const DEFAULT_SOCKET_PATH = '/var/run/iottly.com-agent/sdk/iottly_sdk_socket';
export const DEFAULT_AGENT_VERSION = '1.8.0';
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

export interface SimOptions {
  socketPath: string;
  /** sdkinit version sent after a client's hello; default '1.8.0'; null = pre-1.8 agent, no sdkinit. */
  version?: string | null;
  /** Delay between a hello and the sdkinit (and connectionstatus) reply; default 0. */
  sdkinitDelayMs?: number;
  /** connectionstatus sent after the sdkinit; default null (send nothing). */
  connectionStatusOnHello?: 'connected' | 'disconnected' | null;
  /** Keep every parsed inbound frame and every record; default true. Counts are kept regardless. */
  keepFrames?: boolean;
  /** true logs to stderr; a function receives each line; default false. */
  log?: boolean | ((line: string) => void);
  /** Inbound frame limit in bytes, default 16 MiB; longer lines are skipped and counted invalid. */
  maxFrameBytes?: number;
}

export interface AgentSimulatorEvents {
  connection: [client: SimClient];
  hello: [client: SimClient, frame: any];
  goodbye: [client: SimClient];
  telemetry: [record: TelemetryRecord];
  call: [record: CallRecord];
  sdkError: [record: ErrorRecord];
  frame: [client: SimClient, frame: any, raw: string];
  invalid: [client: SimClient, raw: string, reason: string];
  disconnect: [client: SimClient];
}

type Listener<K extends keyof AgentSimulatorEvents> = (...args: AgentSimulatorEvents[K]) => void;

const isUtf8: (buf: Uint8Array) => boolean =
  typeof nodeBuffer.isUtf8 === 'function'
    ? nodeBuffer.isUtf8
    : (() => {
        const decoder = new TextDecoder('utf-8', { fatal: true });
        return (buf: Uint8Array) => {
          try {
            decoder.decode(buf);
            return true;
          } catch {
            return false;
          }
        };
      })();

const RAW_PREVIEW_BYTES = 256;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isBlank(s: string): boolean {
  return s.trim().length === 0;
}

function codedError(code: string, message: string): Error {
  const err = new Error(message) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

function preview(s: string, max = 200): string {
  return s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
}

/** Connect to an existing socket file to learn whether a live process owns it. */
function probeSocket(socketPath: string, timeoutMs: number): Promise<'live' | 'stale' | 'gone'> {
  return new Promise((resolve, reject) => {
    const probe = net.connect(socketPath);
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      probe.destroy();
      fn();
    };
    // A peer that accepts nothing within the timeout is still someone's socket: never clobber it.
    const timer = setTimeout(() => settle(() => resolve('live')), timeoutMs);
    probe.once('connect', () => settle(() => resolve('live')));
    probe.once('error', (err: NodeJS.ErrnoException) =>
      settle(() => {
        if (err.code === 'ECONNREFUSED') resolve('stale');
        else if (err.code === 'ENOENT') resolve('gone');
        else reject(err);
      }),
    );
  });
}

export interface AgentSimulator {
  on<K extends keyof AgentSimulatorEvents>(event: K, listener: Listener<K>): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once<K extends keyof AgentSimulatorEvents>(event: K, listener: Listener<K>): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  off<K extends keyof AgentSimulatorEvents>(event: K, listener: Listener<K>): this;
  off(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class AgentSimulator extends EventEmitter {
  counts: SimCounts = zeroCounts();

  private readonly path: string;
  private readonly version: string | null;
  private readonly sdkinitDelayMs: number;
  private readonly connectionStatusOnHello: 'connected' | 'disconnected' | null;
  private readonly keep: boolean;
  private readonly maxFrameBytes: number;
  private readonly logLine: ((line: string) => void) | null;

  private server: net.Server | null = null;
  private isListening = false;
  private listenInProgress: Promise<void> | null = null;
  /** dev/ino of the socket file we created, so we only ever unlink our own. */
  private ownSocket: { dev: number; ino: number } | null = null;
  /** Bumped by close() and kill(); async work started under an older epoch stops short. */
  private epoch = 0;
  private nextId = 0;
  private lastByteAt = 0;
  private live: Connection[] = [];

  private readonly records: RecordLog;

  constructor(opts: SimOptions) {
    super();
    if (!isPlainObject(opts)) throw new TypeError('options must be an object');
    if (typeof opts.socketPath !== 'string' || opts.socketPath.length === 0) {
      throw new TypeError('options.socketPath must be a non-empty string');
    }
    const version = opts.version === undefined ? DEFAULT_AGENT_VERSION : opts.version;
    if (version !== null && typeof version !== 'string') {
      throw new TypeError('options.version must be a string or null');
    }
    const delay = opts.sdkinitDelayMs ?? 0;
    if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0) {
      throw new RangeError('options.sdkinitDelayMs must be a non-negative number');
    }
    const cs = opts.connectionStatusOnHello ?? null;
    if (cs !== null && cs !== 'connected' && cs !== 'disconnected') {
      throw new TypeError("options.connectionStatusOnHello must be 'connected', 'disconnected' or null");
    }
    const maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1) {
      throw new RangeError('options.maxFrameBytes must be a positive integer');
    }
    const log = opts.log ?? false;
    if (typeof log !== 'boolean' && typeof log !== 'function') {
      throw new TypeError('options.log must be a boolean or a function');
    }
    this.path = path.resolve(opts.socketPath);
    this.version = version;
    this.sdkinitDelayMs = delay;
    this.connectionStatusOnHello = cs;
    this.keep = opts.keepFrames ?? true;
    this.records = new RecordLog(this.keep);
    this.maxFrameBytes = maxFrameBytes;
    this.logLine =
      log === true ? (line) => process.stderr.write(`[agent-sim] ${line}\n`) : log === false ? null : log;
  }

  get listening(): boolean {
    return this.isListening;
  }
  get socketPath(): string {
    return this.path;
  }
  /** A snapshot of the connections that are currently open. */
  get clients(): SimClient[] {
    return this.live.slice();
  }
  get frames(): FrameRecord[] {
    return this.records.frames;
  }
  get telemetry(): TelemetryRecord[] {
    return this.records.telemetry;
  }
  get calls(): CallRecord[] {
    return this.records.calls;
  }
  get errors(): ErrorRecord[] {
    return this.records.errors;
  }
  get invalid(): InvalidRecord[] {
    return this.records.invalid;
  }

  clearRecords(): void {
    this.records.clear();
  }

  // ---- server lifecycle -------------------------------------------------------------------

  listen(): Promise<void> {
    if (this.isListening) return Promise.resolve();
    if (!this.listenInProgress) {
      this.listenInProgress = this.doListen().finally(() => {
        this.listenInProgress = null;
      });
    }
    return this.listenInProgress;
  }

  private async doListen(): Promise<void> {
    const epoch = this.epoch;
    const p = this.path;
    try {
      await fs.promises.mkdir(path.dirname(p), { recursive: true });
    } catch (err) {
      (err as Error).message = `cannot listen on ${p}: cannot create its directory: ${(err as Error).message}`;
      throw err;
    }
    let st: fs.Stats | null = null;
    try {
      st = await fs.promises.lstat(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (st) {
      if (!st.isSocket()) {
        throw codedError('ENOTSOCK', `${p} exists and is not a socket; refusing to replace it`);
      }
      const state = await probeSocket(p, 1000);
      if (state === 'live') {
        throw codedError('EADDRINUSE', `another process is already listening on ${p}`);
      }
      if (state === 'stale') {
        this.log(`removing stale socket ${p}`);
        try {
          await fs.promises.unlink(p);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    }
    if (epoch !== this.epoch) throw new Error(`simulator on ${p} was closed while listen() was in progress`);

    const server = net.createServer((socket) => this.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') {
          reject(codedError('EADDRINUSE', `another process is already listening on ${p}`));
        } else {
          err.message = `cannot listen on ${p}: ${err.message}`;
          reject(err);
        }
      };
      server.once('error', onError);
      server.listen(p, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.log(`server error: ${err.message}`));
    try {
      const own = fs.lstatSync(p);
      this.ownSocket = { dev: own.dev, ino: own.ino };
    } catch {
      this.ownSocket = null;
    }
    this.server = server;
    this.isListening = true;
    if (epoch !== this.epoch) {
      await this.shutdown();
      throw new Error(`simulator on ${p} was closed while listen() was in progress`);
    }
    this.log(`listening on ${p}`);
  }

  /** Destroys all connections, closes the server and unlinks the socket; idempotent. */
  close(): Promise<void> {
    this.epoch++;
    return this.shutdown();
  }

  /** A crashed agent: everything goes at once, no "stopping". listen() may be called again. */
  kill(): void {
    this.epoch++;
    this.log('kill: dropping every connection');
    void this.shutdown();
  }

  reboot(opts: RebootOptions = {}): Promise<void> {
    return runReboot(this.scenarioTarget(), opts);
  }

  private shutdown(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.isListening = false;
    // Stop accepting first: a client dropped while the listener is still open may reconnect at once
    // into its backlog, and such a connection is reset when the listener closes without ever being
    // accepted, which no real agent does.
    const pending: Promise<void>[] = [];
    if (server) {
      pending.push(new Promise<void>((resolve) => server.close(() => resolve())));
      this.log('server closed');
    }
    this.unlinkOwnSocket();
    const dropped = this.live.slice();
    for (const c of dropped) this.drop(c);
    // Resolve only after every dropped client's 'disconnect' has been emitted, not merely when
    // the server is closed (which node can report first).
    for (const c of dropped) pending.push(c.done);
    return Promise.all(pending).then(() => undefined);
  }

  private unlinkOwnSocket(): void {
    const own = this.ownSocket;
    this.ownSocket = null;
    if (!own) return;
    try {
      const st = fs.lstatSync(this.path);
      if (st.dev === own.dev && st.ino === own.ino) fs.unlinkSync(this.path);
    } catch {
      // already gone (node unlinks a Unix socket when its server closes)
    }
  }

  private drop(c: Connection): void {
    c.droppedByUs = true;
    this.forget(c);
    c.socket.destroy();
  }

  /** Removes a connection from the live list; safe to call more than once. */
  private forget(c: Connection): void {
    if (c.gone) return;
    c.gone = true;
    for (const t of c.timers) clearTimeout(t);
    c.timers.clear();
    const i = this.live.indexOf(c);
    if (i !== -1) this.live.splice(i, 1);
    c.pending = [];
    c.pendingLen = 0;
  }

  // ---- inbound ------------------------------------------------------------------------------

  private onConnection(socket: net.Socket): void {
    if (!this.isListening) {
      socket.destroy();
      return;
    }
    const c = new Connection(++this.nextId, socket);
    this.live.push(c);
    this.counts.connections++;
    socket.on('data', (chunk: Buffer) => this.onData(c, chunk));
    socket.on('end', () => this.onPeerEnd(c));
    socket.on('error', (err) => this.log(`${label(c)} socket error: ${err.message}`));
    socket.on('close', () => this.onSocketClose(c));
    this.log(`${label(c)} connected`);
    this.emit('connection', c);
  }

  private onData(c: Connection, chunk: Buffer): void {
    this.counts.bytes += chunk.length;
    this.lastByteAt = Date.now();
    if (c.gone) return;
    let start = 0;
    if (c.pendingLen > 0 || c.skipping) {
      const nl = chunk.indexOf(10);
      if (nl === -1) {
        if (!c.skipping) this.keepPending(c, chunk);
        return;
      }
      if (c.skipping) {
        c.skipping = false;
      } else {
        c.pending.push(chunk.subarray(0, nl));
        const frame = Buffer.concat(c.pending, c.pendingLen + nl);
        c.pending = [];
        c.pendingLen = 0;
        this.frameFromBuffer(c, frame);
        if (c.gone) return;
      }
      start = nl + 1;
    }
    const last = chunk.lastIndexOf(10);
    if (last >= start) {
      // Complete frames only, so no multi-byte character is cut: one validity check for the whole
      // run of frames, then either the byte-level fast path or one decode and cheap string slices.
      const region = chunk.subarray(start, last);
      const validUtf8 = isUtf8(region);
      if (validUtf8 && this.lean()) {
        this.scanFrames(c, chunk, start, last);
      } else if (validUtf8 && region.length <= this.maxFrameBytes) {
        const s = region.toString('utf8');
        let p = 0;
        for (;;) {
          const q = s.indexOf('\n', p);
          let end = q === -1 ? s.length : q;
          if (end > p && s.charCodeAt(end - 1) === 13) end--;
          if (end > p) this.handleFrame(c, s.slice(p, end));
          if (q === -1 || c.gone) break;
          p = q + 1;
        }
      } else {
        let p = start;
        while (p <= last && !c.gone) {
          const q = chunk.indexOf(10, p);
          this.frameFromBuffer(c, chunk.subarray(p, q));
          p = q + 1;
        }
      }
      if (c.gone) return;
      start = last + 1;
    }
    if (start < chunk.length) this.keepPending(c, start === 0 ? chunk : chunk.subarray(start));
  }

  /** Nothing needs the parsed telemetry: the fast path may count it without JSON.parse. */
  private lean(): boolean {
    return (
      !this.keep && this.logLine === null && this.listenerCount('telemetry') === 0 && this.listenerCount('frame') === 0
    );
  }

  /** Frames in b[start, last], whose bytes are known to be valid UTF-8; b[last] is a newline. */
  private scanFrames(c: Connection, b: Buffer, start: number, last: number): void {
    const max = this.maxFrameBytes;
    const counts = this.counts;
    let p = start;
    while (p <= last) {
      const q = b.indexOf(10, p);
      let e = q;
      if (e > p && b[e - 1] === 13) e--;
      if (e > p) {
        if (e - p <= max && isCertainTelemetry(b, p, e)) {
          counts.telemetry++;
          if (c.helloFirst === null) c.helloFirst = false;
        } else {
          this.frameFromBuffer(c, b.subarray(p, q), false);
          if (c.gone) return;
        }
      }
      p = q + 1;
    }
  }

  private keepPending(c: Connection, bytes: Buffer): void {
    c.pending.push(bytes);
    c.pendingLen += bytes.length;
    if (c.pendingLen > this.maxFrameBytes) {
      const head = Buffer.concat(c.pending, Math.min(c.pendingLen, RAW_PREVIEW_BYTES)).toString('utf8');
      c.pending = [];
      c.pendingLen = 0;
      c.skipping = true;
      this.addInvalid(c, head, `oversized: frame exceeds ${this.maxFrameBytes} bytes`);
    }
  }

  private frameFromBuffer(c: Connection, buf: Buffer, tryFastPath = true): void {
    let len = buf.length;
    if (len > 0 && buf[len - 1] === 13) len--;
    if (len === 0) return;
    if (len > this.maxFrameBytes) {
      this.addInvalid(
        c,
        buf.subarray(0, RAW_PREVIEW_BYTES).toString('utf8'),
        `oversized: frame of ${len} bytes exceeds ${this.maxFrameBytes} bytes`,
      );
      return;
    }
    const body = len === buf.length ? buf : buf.subarray(0, len);
    if (!isUtf8(body)) {
      this.addInvalid(c, body.toString('utf8'), 'invalid UTF-8');
      return;
    }
    if (tryFastPath && this.lean() && isCertainTelemetry(body, 0, len)) {
      this.counts.telemetry++;
      if (c.helloFirst === null) c.helloFirst = false;
      return;
    }
    this.handleFrame(c, body.toString('utf8'));
  }

  private onPeerEnd(c: Connection): void {
    c.ended = true;
    this.flushTruncated(c);
  }

  private flushTruncated(c: Connection): void {
    if (c.pendingLen > 0 && !c.skipping) {
      const raw = Buffer.concat(c.pending, c.pendingLen).toString('utf8');
      if (!isBlank(raw)) this.addInvalid(c, raw, 'truncated: connection closed in the middle of a frame');
    }
    c.pending = [];
    c.pendingLen = 0;
    c.skipping = false;
  }

  private onSocketClose(c: Connection): void {
    // A reset by the peer cuts a frame just like an orderly EOF; our own drop does not count.
    if (!c.ended && !c.droppedByUs) this.flushTruncated(c);
    this.forget(c);
    this.log(`${label(c)} disconnected`);
    try {
      this.emit('disconnect', c);
    } finally {
      c.markDone();
    }
  }

  private handleFrame(c: Connection, raw: string): void {
    let f: any;
    try {
      f = JSON.parse(raw);
    } catch (err) {
      if (isBlank(raw)) return;
      this.addInvalid(c, raw, `invalid JSON: ${(err as Error).message}`);
      return;
    }
    this.records.addFrame(c, f, raw);
    if (this.listenerCount('frame') > 0) this.emit('frame', c, f, raw);
    if (!isPlainObject(f)) {
      this.addInvalid(c, raw, 'not a JSON object');
      return;
    }
    const data = f.data;
    const signal = f.signal;
    if (data !== undefined && signal === undefined) this.handleData(c, data, raw);
    else if (signal !== undefined && data === undefined) this.handleSignal(c, f, signal, raw);
    else if (data !== undefined) this.addInvalid(c, raw, 'frame has both "data" and "signal"');
    else this.addInvalid(c, raw, 'unrecognised frame: neither "data" nor "signal"');
  }

  private handleData(c: Connection, data: any, raw: string): void {
    if (!isPlainObject(data)) return this.addInvalid(c, raw, 'telemetry: "data" is not an object');
    const sc = data.sdkclient;
    if (!isPlainObject(sc) || typeof sc.name !== 'string') {
      return this.addInvalid(c, raw, 'telemetry: missing data.sdkclient.name string');
    }
    const payload = data.payload;
    if (!isPlainObject(payload)) {
      return this.addInvalid(
        c,
        raw,
        payload === undefined ? 'telemetry: missing data.payload' : 'telemetry: data.payload is not an object',
      );
    }
    const channel = data.channel;
    if (channel !== undefined && typeof channel !== 'string') {
      return this.addInvalid(c, raw, 'telemetry: data.channel is not a string');
    }
    if (c.helloFirst === null) c.helloFirst = false;
    this.counts.telemetry++;
    if (this.keep || this.listenerCount('telemetry') > 0) {
      const rec: TelemetryRecord =
        channel === undefined
          ? { client: c, name: sc.name, payload, raw }
          : { client: c, name: sc.name, payload, channel, raw };
      this.records.addTelemetry(rec);
      this.emit('telemetry', rec);
    }
    if (this.logLine) {
      this.log(`${label(c)} telemetry${channel === undefined ? '' : ` [${channel}]`}: ${preview(JSON.stringify(payload))}`);
    }
  }

  private handleSignal(c: Connection, frame: any, signal: any, raw: string): void {
    if (!isPlainObject(signal)) return this.addInvalid(c, raw, 'signal is not an object');
    const sc = signal.sdkclient;
    if (!isPlainObject(sc)) {
      return this.addInvalid(c, raw, `unknown signal: ${preview(Object.keys(signal).join(','), 80) || '(empty)'}`);
    }
    const name = sc.name;
    if (typeof name !== 'string') return this.addInvalid(c, raw, 'sdkclient signal without a name string');
    const status = sc.status;
    if (status === 'connected') {
      this.counts.hellos++;
      if (c.helloFirst === null) c.helloFirst = true;
      c.name = name;
      c.sdkVersion = typeof sc.version === 'string' ? sc.version : null;
      this.log(`${label(c)} hello, sdk version ${c.sdkVersion ?? '(none)'}${c.helloFirst ? '' : ' (NOT the first frame)'}`);
      this.answerHello(c);
      this.emit('hello', c, frame);
      return;
    }
    if (status === 'disconnected') {
      if (c.helloFirst === null) c.helloFirst = false;
      this.counts.goodbyes++;
      this.log(`${label(c)} goodbye`);
      this.emit('goodbye', c);
      return;
    }
    if (status !== undefined) return this.addInvalid(c, raw, `sdkclient: unknown status ${preview(JSON.stringify(status), 80)}`);
    if (sc.call !== undefined) {
      const call = sc.call;
      const keys = isPlainObject(call) ? Object.keys(call) : [];
      if (keys.length !== 1) return this.addInvalid(c, raw, 'call: sdkclient.call must be an object with exactly one key');
      if (c.helloFirst === null) c.helloFirst = false;
      const cmd = keys[0] as string;
      const rec: CallRecord = { client: c, name, cmd, args: (call as Record<string, unknown>)[cmd] };
      this.counts.calls++;
      this.records.addCall(rec);
      this.log(`${label(c)} call ${cmd} ${preview(JSON.stringify(rec.args) ?? 'undefined')}`);
      this.emit('call', rec);
      return;
    }
    if (sc.error !== undefined) {
      const e = sc.error;
      if (!isPlainObject(e) || typeof e.type !== 'string' || typeof e.msg !== 'string') {
        return this.addInvalid(c, raw, 'error: sdkclient.error must be {"type": string, "msg": string}');
      }
      if (c.helloFirst === null) c.helloFirst = false;
      const rec: ErrorRecord = { client: c, name, type: e.type, msg: e.msg };
      this.counts.errors++;
      this.records.addError(rec);
      this.log(`${label(c)} error ${e.type}: ${preview(e.msg)}`);
      this.emit('sdkError', rec);
      return;
    }
    this.addInvalid(c, raw, 'sdkclient signal with neither status, call nor error');
  }

  private addInvalid(c: Connection, raw: string, reason: string): void {
    if (c.helloFirst === null) c.helloFirst = false;
    this.counts.invalid++;
    this.records.addInvalid(c, raw, reason);
    this.log(`${label(c)} invalid frame (${reason}): ${preview(raw, 120)}`);
    this.emit('invalid', c, raw, reason);
  }

  private answerHello(c: Connection): void {
    const reply = () => {
      if (this.version !== null) this.sendSdkinit(this.version, c);
      if (this.connectionStatusOnHello !== null) this.sendConnectionStatus(this.connectionStatusOnHello, c);
    };
    if (this.sdkinitDelayMs <= 0) {
      reply();
      return;
    }
    const timer = setTimeout(() => {
      c.timers.delete(timer);
      reply();
    }, this.sdkinitDelayMs);
    c.timers.add(timer);
  }

  // ---- agent -> sdk ---------------------------------------------------------------------------

  pushCommand(cmdType: string, params: unknown, client?: SimClient): number {
    if (typeof cmdType !== 'string') throw new TypeError('cmdType must be a string');
    // JSON has no undefined: a command without parameters carries an empty object.
    const data: Record<string, unknown> = {};
    Object.defineProperty(data, cmdType, { value: params === undefined ? {} : params, enumerable: true });
    return this.sendFrame({ data }, client);
  }

  sendAgentStatus(status: string, client?: SimClient): number {
    if (typeof status !== 'string') throw new TypeError('status must be a string');
    return this.sendFrame({ signal: { agentstatus: status } }, client);
  }

  sendConnectionStatus(status: 'connected' | 'disconnected', client?: SimClient): number {
    if (status !== 'connected' && status !== 'disconnected') {
      throw new TypeError("status must be 'connected' or 'disconnected'");
    }
    return this.sendFrame({ signal: { connectionstatus: status } }, client);
  }

  sendSdkinit(version: string, client?: SimClient): number {
    if (typeof version !== 'string') throw new TypeError('version must be a string');
    return this.sendFrame({ signal: { sdkinit: { version } } }, client);
  }

  sendRaw(data: string | Buffer, client?: SimClient): number {
    if (typeof data !== 'string' && !Buffer.isBuffer(data)) throw new TypeError('data must be a string or a Buffer');
    return this.write(data, client);
  }

  flapMqtt(downMs: number): Promise<void> {
    return runFlapMqtt(this.scenarioTarget(), downMs);
  }

  /** What the scenarios may use: live reads of private state and the simulator's own methods. */
  private scenarioTarget(): ScenarioTarget {
    return {
      epoch: () => this.epoch,
      lastByteAt: () => this.lastByteAt,
      sendAgentStatus: (status) => this.sendAgentStatus(status),
      sendConnectionStatus: (status) => this.sendConnectionStatus(status),
      shutdown: () => this.shutdown(),
      listen: () => this.listen(),
      log: (line) => this.log(line),
    };
  }

  private sendFrame(frame: unknown, client?: SimClient): number {
    const line = `${JSON.stringify(frame)}\n`;
    const n = this.write(line, client);
    if (this.logLine) this.log(`-> ${client ? label(client) : 'all'} (${n}) ${preview(line.slice(0, -1))}`);
    return n;
  }

  private write(data: string | Buffer, client?: SimClient): number {
    if (client !== undefined) {
      const c = client as Connection;
      if (!this.live.includes(c) || !writable(c.socket)) return 0;
      c.socket.write(data);
      return 1;
    }
    let n = 0;
    for (const c of this.live) {
      if (!writable(c.socket)) continue;
      c.socket.write(data);
      n++;
    }
    return n;
  }

  // ---- helpers ------------------------------------------------------------------------------

  waitFor(pred: () => boolean, timeoutMs = 5000, what?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const t0 = Date.now();
      const poll = () => {
        let ok: boolean;
        try {
          ok = pred();
        } catch (err) {
          reject(err);
          return;
        }
        if (ok) {
          resolve();
          return;
        }
        if (Date.now() - t0 >= timeoutMs) {
          const desc = what ?? preview(pred.toString().replace(/\s+/g, ' '), 160);
          reject(
            new Error(
              `AgentSimulator.waitFor timed out after ${timeoutMs} ms waiting for ${desc}; ` +
                `clients=${this.live.length} listening=${this.isListening} counts=${JSON.stringify(this.counts)}`,
            ),
          );
          return;
        }
        setTimeout(poll, 5);
      };
      poll();
    });
  }

  private log(line: string): void {
    if (this.logLine) this.logLine(line);
  }
}

function writable(socket: net.Socket): boolean {
  return !socket.destroyed && socket.writable;
}
