// The scripted agent of the simulation tests: a raw node:net server on the SDK's socket path that
// does exactly what the test tells it, and records what arrives on each connection as compact
// records ({conn, open} / {conn, frames: [...]} / {conn, close}). It runs either in the test's own
// process (ScriptedAgent) or in a child process (ChildAgent, agent-child.mjs), where a kill is a
// real SIGKILL. Both expose the same async operations; records reach AgentLog either way.
import * as net from 'node:net';
import { fork } from 'node:child_process';
import { existsSync, linkSync, renameSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./agent-child.mjs', import.meta.url));

/** Classify one inbound line (a Buffer without its newline) into a compact descriptor. */
export function describeFrame(line) {
  const bytes = line.length + 1;
  let f;
  try {
    f = JSON.parse(line.toString('utf8'));
  } catch {
    return { k: 'bad', bytes };
  }
  const sc = f?.signal?.sdkclient;
  if (sc) {
    if (sc.status === 'connected') return { k: 'hello', bytes, name: sc.name, version: sc.version };
    if (sc.status === 'disconnected') return { k: 'bye', bytes, name: sc.name };
    if (sc.call) return { k: 'call', bytes, id: Object.values(sc.call)[0]?.id ?? null };
    if (sc.error) return { k: 'err', bytes, type: sc.error.type };
    return { k: 'bad', bytes };
  }
  const p = f?.data?.payload;
  if (p && typeof p === 'object') {
    if (typeof p.seq === 'number') return { k: 't', bytes, seq: p.seq };
    if (typeof p.w === 'number') return { k: 'w', bytes, w: p.w };
    return { k: 'tx', bytes };
  }
  return { k: 'bad', bytes };
}

/** The agent itself: a server plus the operations the simulation drives. */
export class ScriptedAgent {
  constructor(socketPath, onRecord) {
    this.socketPath = socketPath;
    this.onRecord = onRecord;
    this.server = null;
    this.mode = 'down'; // 'accept' | 'refuse' (a stale socket file) | 'down' (no file)
    /** Servers that stopped listening but whose handle is still closing (see unlisten()). */
    this.closingServers = new Set();
    this.conns = new Map();
    this.nextConn = 1;
    /** When set, every new connection gets {"signal":{"sdkinit":{"version":...}}} once its hello arrives. */
    this.autoSdkinit = null;
  }

  setAutoSdkinit(version) {
    this.autoSdkinit = version;
    return true;
  }

  /** The newest connection still open, or null. */
  current() {
    let last = null;
    for (const c of this.conns.values()) if (!c.closed && !c.socket.destroyed) last = c;
    return last;
  }

  async listen() {
    if (this.server) return;
    rmSync(this.socketPath, { force: true });
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accepted(socket));
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.mode = 'accept';
  }

  /** Stop listening; existing connections stay. `leave`: 'none' (no file) or 'stale' (refuses). */
  async unlisten(leave = 'none') {
    if (this.server) {
      const server = this.server;
      this.server = null;
      const keep = `${this.socketPath}.stale`;
      if (leave === 'stale' && existsSync(this.socketPath)) linkSync(this.socketPath, keep);
      // close() stops listening at once (and libuv unlinks the path), but its callback waits for
      // every connection to end: wait for the path to go instead. Until then the handle is still ours.
      this.closingServers.add(server);
      server.close(() => this.closingServers.delete(server));
      const t0 = Date.now();
      while (existsSync(this.socketPath) && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 1));
      if (leave === 'stale' && existsSync(keep)) renameSync(keep, this.socketPath);
    } else if (leave === 'none') {
      rmSync(this.socketPath, { force: true });
    }
    this.mode = leave === 'stale' && existsSync(this.socketPath) ? 'refuse' : 'down';
  }

  /** Remove the socket file while listening: new connects fail (ENOENT) though the server lives. */
  removePath() {
    rmSync(this.socketPath, { force: true });
    this.mode = this.server ? 'removed' : 'down';
  }

  accepted(socket) {
    const id = this.nextConn++;
    const c = { id, socket, closed: false, tail: Buffer.alloc(0), slowTimer: null, state: 'reading' };
    this.conns.set(id, c);
    this.onRecord({ conn: id, open: Date.now() });
    socket.on('data', (chunk) => {
      let buf = c.tail.length ? Buffer.concat([c.tail, chunk]) : chunk;
      const frames = [];
      let nl;
      while ((nl = buf.indexOf(10)) !== -1) {
        frames.push(describeFrame(buf.subarray(0, nl)));
        buf = buf.subarray(nl + 1);
      }
      c.tail = Buffer.from(buf);
      if (frames.length) {
        if (!c.helloSeen && frames[0].k === 'hello') {
          c.helloSeen = true;
          if (this.autoSdkinit) socket.write(`{"signal":{"sdkinit":{"version":"${this.autoSdkinit}"}}}\n`);
        }
        c.helloSeen = true;
        this.onRecord({ conn: id, frames });
      }
    });
    socket.on('end', () => {
      // The SDK closed its side: nothing more will come; close ours too.
      socket.end();
    });
    // A write error (EPIPE: the SDK closed first) makes node drop what we had not read yet: the
    // record says so, and the connection counts as closed uncleanly.
    socket.on('error', (err) => {
      c.error = err.code ?? String(err);
    });
    socket.on('close', () => {
      c.closed = true;
      if (c.slowTimer) clearInterval(c.slowTimer);
      this.onRecord({ conn: id, close: Date.now(), partialBytes: c.tail.length, error: c.error ?? null });
      this.conns.delete(id);
    });
  }

  write(data) {
    const c = this.current();
    if (!c || c.socket.writableEnded) return false;
    c.socket.write(typeof data === 'string' ? data : Buffer.from(data));
    return true;
  }

  /** Write `parts` one after another, each on its own event-loop turn (a frame split across reads). */
  async writeSplit(parts) {
    const c = this.current();
    if (!c) return false;
    for (const p of parts) {
      if (c.closed || c.socket.writableEnded) return false;
      await new Promise((resolve) => c.socket.write(typeof p === 'string' ? p : Buffer.from(p), () => resolve()));
      await new Promise((resolve) => setImmediate(resolve));
    }
    return true;
  }

  setReading(state) {
    const c = this.current();
    if (!c) return false;
    if (c.slowTimer) {
      clearInterval(c.slowTimer);
      c.slowTimer = null;
    }
    c.state = state;
    if (state === 'paused') c.socket.pause();
    else if (state === 'reading') c.socket.resume();
    else if (state === 'slow') {
      // Read one chunk every 10 ms: resume, and pause again on the next turn.
      c.socket.pause();
      c.slowTimer = setInterval(() => {
        c.socket.resume();
        setImmediate(() => {
          if (c.state === 'slow') c.socket.pause();
        });
      }, 10);
    }
    return true;
  }

  /** Graceful close: end our side, keep reading until the SDK closes, so nothing it wrote is lost. */
  endCurrent() {
    const c = this.current();
    if (!c) return null;
    this.setReading('reading');
    c.socket.end();
    return c.id;
  }

  /** Close at once, dropping whatever the SDK wrote that we have not read (an unclean close). */
  async destroyCurrent() {
    const c = this.current();
    if (!c) return null;
    const closed = new Promise((resolve) => c.socket.once('close', resolve));
    c.socket.destroy();
    await closed;
    return c.id;
  }

  /** Write `data` and close at once without reading any further. */
  /** Write `data`, then close at once without reading any further; resolves once closed. */
  async writeAndDestroy(data) {
    const c = this.current();
    if (!c) return null;
    c.socket.pause();
    await new Promise((resolve) => c.socket.write(typeof data === 'string' ? data : Buffer.from(data), () => resolve()));
    const closed = new Promise((resolve) => c.socket.once('close', resolve));
    c.socket.destroy();
    await closed;
    return c.id;
  }

  /** Read again on every connection (the end of a sequence: take in what is left). */
  resumeAll() {
    for (const c of this.conns.values()) {
      if (c.slowTimer) clearInterval(c.slowTimer);
      c.slowTimer = null;
      c.state = 'reading';
      c.socket.resume();
    }
    return true;
  }

  async close() {
    for (const c of this.conns.values()) c.socket.destroy();
    await this.unlisten('none');
  }
}

/** An agent in a child process, driven over IPC; `kill()` is a real SIGKILL. */
export class ChildAgent {
  constructor(socketPath, onRecord) {
    this.socketPath = socketPath;
    this.onRecord = onRecord;
    this.child = null;
    this.calls = new Map();
    this.nextCall = 1;
    this.mode = 'down';
    this.openConns = new Set();
  }

  async spawn() {
    const child = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.on('message', (m) => {
      if (m.rec) {
        if (m.rec.open) this.openConns.add(m.rec.conn);
        if (m.rec.close) this.openConns.delete(m.rec.conn);
        this.onRecord(m.rec);
      } else if (m.reply) {
        const p = this.calls.get(m.reply);
        this.calls.delete(m.reply);
        if (m.error) p?.reject(new Error(m.error));
        else p?.resolve(m.result);
      }
    });
    this.exited.then(() => {
      for (const p of this.calls.values()) p.reject(new Error('the agent child exited'));
      this.calls.clear();
    });
    await this.rpc('init', this.socketPath);
  }

  rpc(method, ...args) {
    // A killed agent does nothing: like writing to a connection that is gone.
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve(null);
    const id = this.nextCall++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.child.send({ call: id, method, args });
    });
  }

  async listen() {
    await this.rpc('listen');
    this.mode = 'accept';
  }
  async unlisten(leave) {
    this.mode = await this.rpc('unlisten', leave);
  }
  async removePath() {
    this.mode = await this.rpc('removePath');
  }
  write(data) {
    return this.rpc('write', typeof data === 'string' ? data : Array.from(data));
  }
  writeSplit(parts) {
    return this.rpc('writeSplit', parts.map((p) => (typeof p === 'string' ? p : Array.from(p))));
  }
  setReading(state) {
    return this.rpc('setReading', state);
  }
  endCurrent() {
    return this.rpc('endCurrent');
  }
  destroyCurrent() {
    return this.rpc('destroyCurrent');
  }
  resumeAll() {
    return this.rpc('resumeAll');
  }
  setAutoSdkinit(version) {
    return this.rpc('setAutoSdkinit', version);
  }
  writeAndDestroy(data) {
    return this.rpc('writeAndDestroy', typeof data === 'string' ? data : Array.from(data));
  }

  /** SIGKILL the agent process; resolves once it is gone. Its connections die with it. */
  async kill() {
    if (!this.child) return;
    this.child.kill('SIGKILL');
    await this.exited;
    this.child = null;
    this.mode = existsSync(this.socketPath) ? 'refuse' : 'down';
  }

  async close() {
    if (!this.child) return;
    try {
      await this.rpc('close');
    } catch {
      // already gone
    }
    this.child?.disconnect?.();
    await this.exited;
    this.child = null;
  }
}

/**
 * What the agent received, per connection, built from the records of either agent. A connection:
 * { id, frames: [descriptor...], open, closed, closedBy: 'agent-clean' | 'agent-unclean' | 'kill' | 'peer' }.
 */
export class AgentLog {
  constructor() {
    this.conns = new Map();
    this.order = [];
    this.generation = 0; // child agents: connection ids restart at 1 in each process
    this.listeners = new Set();
  }

  key(conn) {
    return `${this.generation}:${conn}`;
  }

  record(rec) {
    const key = this.key(rec.conn);
    let c = this.conns.get(key);
    if (rec.open) {
      c = { key, frames: [], open: true, closedBy: null, unclean: false, partialBytes: 0 };
      this.conns.set(key, c);
      this.order.push(c);
    } else if (!c) return;
    if (rec.frames) c.frames.push(...rec.frames);
    if (rec.close) {
      c.open = false;
      c.partialBytes = rec.partialBytes ?? 0;
      if (rec.error && !c.unclean) {
        c.unclean = true;
        c.closedBy = `agent error ${rec.error}`;
        this.onUnclean?.(c);
      }
    }
    for (const l of this.listeners) l(c, rec);
  }

  /** The connection on which the SDK is talking now, from the agent's side: the newest open one. */
  current() {
    for (let i = this.order.length - 1; i >= 0; i--) if (this.order[i].open) return this.order[i];
    return null;
  }

  markUnclean(key, why) {
    const c = this.conns.get(key);
    if (c) {
      c.unclean = true;
      c.closedBy = why;
    }
  }

  /** Every connection of the current agent generation is gone (a killed child). */
  killGeneration() {
    for (const c of this.order) {
      if (c.open && c.key.startsWith(`${this.generation}:`)) {
        c.open = false;
        c.unclean = true;
        c.closedBy = 'kill';
      }
    }
    this.generation++;
  }
}
