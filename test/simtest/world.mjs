// The "real" side of the model run: one SDK (public API only), one scripted agent, and recorders
// of everything observable (agent log, statuses, callbacks, worker notes, uncaught exceptions).
// Invariant violations found while events arrive are collected in `violations`; invariants.mjs
// checks the rest after every step and at the end of a sequence.
import * as net from 'node:net';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { AgentLog, ChildAgent, ScriptedAgent } from './agent.mjs';

export const APP_NAME = 'simtest-app ✓ "q"';

/** An error thrown on purpose by test code; anything else uncaught is a failure. */
export class PlantedError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SimtestPlanted';
    this.planted = true;
  }
}

export function isPlanted(err) {
  return err instanceof PlantedError || (err && typeof err === 'object' && err.planted === true);
}

/** Process-wide recorders, installed once: uncaught exceptions and worker notes. */
export const processState = {
  installed: false,
  plantedUncaught: 0,
  /** A sequence is running: what escapes is charged to it. */
  active: false,
  unexpectedUncaught: [],
  worldForNotes: null,
  channel: null,
};

export async function installProcessHooks() {
  if (processState.installed) return;
  processState.installed = true;
  const onUncaught = (err) => {
    if (isPlanted(err)) processState.plantedUncaught++;
    else if (processState.active) processState.unexpectedUncaught.push(err);
    else {
      // Outside a sequence (the runner itself failed): behave as node would.
      console.error(err);
      process.exit(1);
    }
  };
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  const { BroadcastChannel } = await import('node:worker_threads');
  processState.channel = new BroadcastChannel('iottly-simtest');
  processState.channel.unref();
  processState.channel.onmessage = (ev) => processState.worldForNotes?.workerNote(ev.data);
  // Warm up what the process allocates once, lazily, so that it is not taken for a leak: libuv's
  // thread pool (fs), its SIGCHLD pipe (the first child process), its inotify descriptor (the first
  // fs.watch, as the JS transport's watch of the socket path; libuv keeps it for the loop's life).
  void process.stdout;
  void process.stderr;
  const { mkdtempSync, rmSync, watch } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  watch(tmpdir(), { persistent: false }).close();
  await (await import('node:fs/promises')).stat(tmpdir());
  const dir = mkdtempSync(join(tmpdir(), 'iottly-simtest-warm-'));
  const child = new ChildAgent(join(dir, 'warm.sock'), () => {});
  await child.spawn();
  await child.close();
  rmSync(dir, { recursive: true, force: true });
}

export function fdCount() {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

/** This process's open descriptors and what each points to (a socket, a pipe, a file, an anon inode). */
export function fdTargets() {
  const out = new Map();
  try {
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        out.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
      } catch {
        // closed between the listing and the read (readdirSync's own descriptor is one)
      }
    }
  } catch {
    // no /proc: the count check still runs
  }
  return out;
}

export function threadCount() {
  try {
    return Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
  } catch {
    return -1;
  }
}

export function socketBufferBytes() {
  try {
    return Number(readFileSync('/proc/sys/net/core/wmem_default', 'utf8').trim());
  } catch {
    return 212_992;
  }
}

/** Handles of this process that are sockets, pipes, servers, child processes. */
export function ioHandles() {
  return process._getActiveHandles().filter((h) => !(h && h.constructor && /Timer|Timeout|Immediate/.test(h.constructor.name)));
}

export const WORKER_KINDS = new Set(['w-ok', 'w-reply', 'w-fail', 'w-slow']);

export class World {
  /**
   * sdk: the iottly-sdk module; transport: 'js' | 'native'; dir: a scratch directory;
   * config: { backend: 'inproc' | 'child', maxBufferedMsgs, workers: bool }.
   */
  constructor(sdk, transport, dir, config) {
    this.sdkModule = sdk;
    this.transport = transport;
    this.socketPath = join(dir, 'agent.sock');
    this.config = config;
    this.log = new AgentLog();
    this.log.onUnclean = (c) => this.noteUnclean(c.closedBy);
    this.violations = [];
    this.notes = [];
    this.statuses = [];
    this.connStatuses = [];
    this.statusOpen = false;
    this.stopResolved = false; // stop() resolved and no start() since
    this.stopInProgress = false;
    this.startDuringStop = false;
    this.seqNext = 0;
    this.frameBytes = []; // seq -> a lower bound of its frame's size
    this.uncleanCloses = []; // { seqNext, callsAccepted, why }
    this.cmdNext = 1;
    this.cmdSent = new Map(); // id -> { cmdType, kind }
    this.invoked = new Map(); // id -> count
    this.invokedOrder = new Map(); // cmdType -> [id]
    this.workerRuns = new Map(); // cmdType -> { running, lastId }
    this.statusCallbackMode = 'return';
    this.throwingListeners = new Set();
    this.callAgentResults = [];
    this.stopDurations = [];
    this.maxStopMs = 0;
    this.ran = [];
  }

  get options() {
    return {
      socketPath: this.socketPath,
      transport: this.transport,
      maxBufferedMsgs: this.config.maxBufferedMsgs,
      reconnectIntervalMs: 10,
      handshakeTimeoutMs: 60,
      stopTimeoutMs: 150,
      stoppingHoldMs: 300,
      maxFrameBytes: 4096,
      maxQueueBytes: 64 * 1024,
      highWaterMark: 32 * 1024,
      workers: { minThreads: 1, maxThreads: 1, abortGraceMs: 50, maxQueue: 20 },
    };
  }

  violation(what) {
    this.violations.push(what);
  }

  async setup() {
    this.baseline = { fds: fdCount(), fdTargets: fdTargets(), threads: threadCount(), handles: new Set(ioHandles()) };
    await this.makeAgent();
    this.sdk = new this.sdkModule.IottlySDK(APP_NAME, {
      ...this.options,
      onAgentStatusChanged: (s) => this.onStatus(s),
      onConnectionStatusChanged: (s) => {
        this.connStatuses.push(s);
      },
    });
    processState.worldForNotes = this;
    this.owesDrain = false;
    this.sdk.on('drain', () => {
      this.owesDrain = false;
    });
  }

  async makeAgent() {
    const rec = (r) => this.log.record(r);
    const before = new Set(ioHandles());
    if (this.config.backend === 'child') {
      this.agent = new ChildAgent(this.socketPath, rec);
      await this.agent.spawn();
    } else {
      this.agent = new ScriptedAgent(this.socketPath, rec);
    }
    await this.agent.setAutoSdkinit(this.config.agentVersion ?? null);
    await this.agent.listen();
    this.agentHandles = new Set(ioHandles().filter((h) => !before.has(h)));
  }

  /** Handles that belong to the agent (in-process server and connections, or the child's). */
  isAgentHandle(h) {
    if (this.agentHandles?.has(h)) return true;
    // The SDK never listens: any server is the agent's (one it stopped may still be closing).
    if (h instanceof net.Server) return true;
    if (this.agent instanceof ScriptedAgent) {
      if (h === this.agent.server) return true;
      if (this.agent.closingServers.has(h)) return true;
      for (const c of this.agent.conns.values()) if (c.socket === h) return true;
    }
    return false;
  }

  onStatus(s) {
    this.statuses.push(s);
    if (this.stopResolved) this.violation(`agent status '${s}' reported after stop() resolved (statuses ${JSON.stringify(this.statuses.slice(-6))})`);
    if (s === 'started') {
      if (this.statusOpen) this.violation(`'started' twice without 'stopped' (statuses ${JSON.stringify(this.statuses.slice(-6))})`);
      this.statusOpen = true;
    } else if (s === 'stopped') {
      if (!this.statusOpen) this.violation(`'stopped' without an open 'started' (statuses ${JSON.stringify(this.statuses.slice(-6))})`);
      this.statusOpen = false;
    }
    if (this.statusCallbackMode === 'throw') throw new PlantedError(`planted throw in onAgentStatusChanged(${s})`);
    if (this.statusCallbackMode === 'reject') return Promise.reject(new PlantedError(`planted rejection in onAgentStatusChanged(${s})`));
    return undefined;
  }

  /** A command callback of `kind` for `cmdType` (main-thread kinds). */
  callback(cmdType, kind) {
    return (params) => {
      this.invokedMain(cmdType, params?.id);
      switch (kind) {
        case 'throw':
          throw new PlantedError(`planted throw in command ${params?.id}`);
        case 'reject':
          return Promise.reject(new PlantedError(`planted rejection in command ${params?.id}`));
        case 'slow':
          return new Promise((resolve) => setTimeout(resolve, 15));
        default:
          return undefined;
      }
    };
  }

  invokedMain(cmdType, id) {
    const n = (this.invoked.get(id) ?? 0) + 1;
    this.invoked.set(id, n);
    if (n > 1) this.violation(`command ${id} (${cmdType}) given to its callback ${n} times`);
    const order = this.invokedOrder.get(cmdType) ?? [];
    if (order.length && order.at(-1) > id) this.violation(`command ${id} (${cmdType}) called after command ${order.at(-1)}: out of order`);
    order.push(id);
    this.invokedOrder.set(cmdType, order);
    const sent = this.cmdSent.get(id);
    if (!sent) this.violation(`callback called with command id ${id}, which the agent never sent`);
    else if (sent.cmdType !== cmdType) this.violation(`command ${id} of type ${sent.cmdType} given to the callback of ${cmdType}`);
  }

  workerNote(note) {
    const { id, cmdType, phase } = note;
    const sub = this.cmdSent.get(id);
    if (phase === 'start') {
      const n = (this.invoked.get(id) ?? 0) + 1;
      this.invoked.set(id, n);
      if (n > 1) this.violation(`command ${id} (${cmdType}) run by a worker handler ${n} times`);
      if (!sub) this.violation(`worker handler ran command id ${id}, which the agent never sent`);
      const run = this.workerRuns.get(cmdType) ?? { running: 0, lastId: 0 };
      if (sub?.ordered) {
        if (run.running > 0) this.violation(`ordered worker handler for ${cmdType}: command ${id} started while another ran`);
        if (run.lastId > id) this.violation(`ordered worker handler for ${cmdType}: command ${id} started after ${run.lastId}`);
      }
      run.running++;
      run.lastId = Math.max(run.lastId, id);
      this.workerRuns.set(cmdType, run);
    } else {
      const run = this.workerRuns.get(cmdType);
      if (run) run.running--;
    }
  }

  /** Installs a listener on `event` that throws on purpose each time. */
  addThrowingListener(event) {
    if (this.throwingListeners.has(event)) return;
    this.throwingListeners.add(event);
    this.sdk.on(event, () => {
      throw new PlantedError(`planted throw in a '${event}' listener`);
    });
  }

  /** Send `count` numbered messages at once; returns the seqs. */
  sendBurst({ count, text, channel, bigAt, bigBytes }) {
    for (let i = 0; i < count; i++) {
      const seq = this.seqNext++;
      const payload = { seq, t: text };
      if (i === bigAt && bigBytes > 0) payload.pad = 'x'.repeat(bigBytes);
      this.frameBytes[seq] = Buffer.byteLength(JSON.stringify(payload)) + 40;
      if (!this.sdk.send(payload, channel)) this.owesDrain = true;
    }
  }

  /** The agent connection the SDK talks on: open, and its hello arrived. */
  agentConn() {
    const c = this.log.current();
    return c && !c.sdkClosed && c.frames.length > 0 && c.frames[0].k === 'hello' ? c : null;
  }

  noteUnclean(why) {
    const s = this.sdk.stats();
    this.uncleanCloses.push({ seqNext: this.seqNext, why, callsAccepted: s.callsAccepted ?? 0, workerAccepted: s.accepted - this.seqNext });
  }

  /**
   * The unclean close noted last has completed. Worker replies are sent by the SDK on its own, at any
   * moment: those accepted until now may have been written before the agent's socket went away.
   */
  uncleanDone() {
    const last = this.uncleanCloses.at(-1);
    if (last) last.workerAccepted = this.sdk.stats().accepted - this.seqNext;
  }

  async teardown() {
    processState.worldForNotes = null;
    try {
      if (this.sdk) await this.sdk.stop();
    } finally {
      await this.agent?.close();
    }
  }
}
