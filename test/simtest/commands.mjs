// The model and the commands of the simulation: fast-check generates and shrinks sequences of
// these (fc.commands); each runs against the World (world.mjs) and updates the model. Every command
// prints as ["Name", {params}], so a shrunk sequence pastes into replay() (runner.mjs) as it is.
import fc from 'fast-check';
import { InvariantError, checkStep, checkStopped, ignored, stableStats, waitFor } from './invariants.mjs';
import { WORKER_KINDS, ioHandles, threadCount } from './world.mjs';

const WORKER_MODULE = new URL('./worker-fixture.mjs', import.meta.url);
const CMD_TYPES = ['c0', 'c1'];
/** Deadlines scale with IOTTLY_TEST_SLOWDOWN, as in the rest of the suite (e.g. 10 under emulation). */
export const SLOWDOWN = Number(process.env.IOTTLY_TEST_SLOWDOWN || 1);
const LINK_DEADLINE_MS = 1500 * SLOWDOWN;
const CALLBACK_DEADLINE_MS = 1500 * SLOWDOWN;
const WORKER_DEADLINE_MS = 4000 * SLOWDOWN;

/** The model: what the test knows of the SDK and the agent. */
export function initialModel(config) {
  return {
    backend: config.backend,
    running: false,
    agent: 'accept', // 'accept' | 'refuse' | 'down' | 'removed' | 'dead' (a killed child)
    linked: false,
    connKey: null,
    reading: 'reading',
    subs: {}, // cmdType -> { kind, ordered }
    steps: 0,
  };
}

const violation = (invariant, detail) => {
  if (ignored.names.has(invariant)) {
    ignored.counts[invariant] = (ignored.counts[invariant] ?? 0) + 1;
    return;
  }
  throw new InvariantError(invariant, detail);
};

/** After each command: wait for what the model predicts (a link), then check every invariant. */
const TRACE = process.env.SIMTEST_TRACE === '1';

async function settle(m, w) {
  m.steps++;
  if (TRACE) console.log(`    step ${m.steps}: ${w.ran.at(-1)} running=${m.running} agent=${m.agent} linked=${m.linked} statuses=${JSON.stringify(w.statuses.slice(-3))} invoked=${w.invoked.size}`);
  if (m.running && m.agent === 'accept') {
    const ok = await waitFor(() => w.agentConn() !== null, LINK_DEADLINE_MS);
    if (!ok) violation('reconnects', `the SDK did not connect to a listening agent within ${LINK_DEADLINE_MS} ms (stats ${JSON.stringify(w.sdk.stats())})`);
  }
  const conn = w.agentConn();
  if (conn?.key !== m.connKey) {
    m.connKey = conn?.key ?? null;
    m.reading = 'reading';
  }
  m.linked = conn !== null;
  if (m.linked && m.reading === 'reading') {
    const idle = await waitFor(() => {
      const s = w.sdk.stats();
      return s.buffered === 0 && (s.callsBuffered ?? 0) === 0;
    }, 500);
    // send() said "slow down": once linked with the queue written out, 'drain' says "go on".
    if (idle && w.owesDrain && m.running && w.sdk.linked) {
      const ok = await waitFor(() => !w.owesDrain, 500 * SLOWDOWN);
      if (!ok) violation('drain', `send() returned false, the SDK is linked and its queue written out (stats ${JSON.stringify(w.sdk.stats())}), but no 'drain' came`);
    }
  }
  checkStep(w);
}

class Cmd {
  constructor(params = {}) {
    this.p = params;
  }
  check() {
    return true;
  }
  toString() {
    return JSON.stringify([this.constructor.name, this.p]);
  }
  async run(m, w) {
    w.ran.push(this.constructor.name);
    if (TRACE) console.log(`  run ${this}`);
    await planted(() => this.act(m, w), this);
    await settle(m, w);
  }
}

/** A planted exception (a throwing listener or callback) must never come out of an SDK call. */
export async function planted(fn, cmd) {
  try {
    await fn();
  } catch (err) {
    if (err?.planted) throw new InvariantError('listener-isolation', `${cmd} : an exception planted in a listener or callback came out of the SDK call: ${err.message}`);
    throw err;
  }
}

// ---- the SDK side --------------------------------------------------------------------------

export class Start extends Cmd {
  check(m) {
    return !m.running;
  }
  async act(m, w) {
    w.stopResolved = false;
    w.sdk.start();
    m.running = true;
  }
}

async function timedStop(m, w, during) {
  const threadsBefore = w.baselineThreads ?? w.baseline.threads;
  const t0 = Date.now();
  w.stopInProgress = true;
  // A link the agent reads normally gets the goodbye as its last frame (unless stop() is raced by a close).
  const live = w.agentConn();
  if (live && m.reading === 'reading' && !(during && w.racing === 'agentClose')) live.expectBye = true;
  const p = w.sdk.stop();
  let restarted = false;
  if (during) restarted = await during();
  await p;
  const ms = Date.now() - t0;
  // Every connection still open on the agent's side is closed by the SDK, even if the agent has not
  // seen it yet: those open when stop() began, and any made while it ran (the SDK reconnects until
  // its worker handlers have stopped).
  // A start() raced with the stop cannot have been accepted yet: its connect() was only called now.
  for (const c of w.log.order) if (c.open) c.sdkClosed = true;
  w.stopInProgress = false;
  w.stopDurations.push(ms);
  if (restarted) {
    m.running = true;
    return;
  }
  m.running = false;
  await checkStopped(w, ms, threadsBefore);
  w.stopResolved = true;
}

export class Stop extends Cmd {
  async act(m, w) {
    await timedStop(m, w, null);
  }
}

/** stop() with something else happening while it runs. */
export class StopRacing extends Cmd {
  check(m) {
    return m.running;
  }
  async act(m, w) {
    const what = this.p.what;
    w.racing = what;
    await timedStop(m, w, async () => {
      switch (what) {
        case 'sdkinit':
          await w.agent.write('{"signal":{"sdkinit":{"version":"1.8.0"}}}\n');
          return false;
        case 'start':
          w.sdk.start();
          return true;
        case 'send':
          w.sendBurst({ count: 5, text: 'during stop', channel: null, bigAt: -1, bigBytes: 0 });
          return false;
        case 'agentClose':
          await w.agent.endCurrent();
          return false;
        case 'flap':
          await w.agent.write('{"signal":{"connectionstatus":"disconnected"}}\n{"signal":{"agentstatus":"stopping"}}\n');
          return false;
        default:
          return false;
      }
    });
  }
}

export class SendBurst extends Cmd {
  async act(m, w) {
    w.sendBurst(this.p);
  }
}

export class CallAgent extends Cmd {
  async act(m, w) {
    const version = w.sdk.agentVersion;
    const linked = w.sdk.linked;
    const id = w.cmdNext++;
    const before = stableStats(w.sdk);
    let outcome = 'ok';
    try {
      if (this.p.bad) w.sdk.callAgent('', { id });
      else w.sdk.callAgent('script', { id, t: this.p.text });
    } catch (err) {
      outcome = err?.name ?? String(err);
      if (err?.planted) throw err;
    }
    const newEnough = version !== null && atLeast(version, [1, 8, 0]);
    let expected;
    if (this.p.bad) expected = 'TypeError';
    else if (!newEnough) expected = 'InvalidAgentVersion';
    else if (!linked || !m.running) expected = 'DisconnectedSDK';
    else expected = 'ok';
    if (outcome !== expected) {
      violation('callAgent', `callAgent with agentVersion ${version}, linked ${linked}, running ${m.running}${this.p.bad ? ', bad cmd' : ''}: ${outcome}, expected ${expected}`);
    }
    if ('callsAccepted' in before) {
      const after = stableStats(w.sdk);
      const grew = after.callsAccepted - before.callsAccepted;
      if (grew !== (outcome === 'ok' ? 1 : 0)) violation('calls-accounting', `callsAccepted grew by ${grew} for a call that gave ${outcome}`);
    }
    if (outcome === 'ok' && this.p.more > 0) {
      // A burst of calls (the agent may not be reading): what waits must stay within maxQueueBytes.
      for (let i = 0; i < this.p.more; i++) w.sdk.callAgent('script', { id: w.cmdNext++, t: this.p.text });
      const s = stableStats(w.sdk);
      const minBytes = Buffer.byteLength(JSON.stringify({ signal: { sdkclient: { name: w.sdk.name, call: { script: { id: 0, t: this.p.text } } } } })) + 1;
      const waiting = s.callsBuffered ?? 0;
      if (waiting * minBytes > w.options.maxQueueBytes + 64 * 1024) {
        violation('calls-bounded', `${waiting} calls of at least ${minBytes} bytes wait to be written, over maxQueueBytes ${w.options.maxQueueBytes}`);
      }
    }
  }
}

export class Subscribe extends Cmd {
  async act(m, w) {
    const { cmdType, kind, ordered } = this.p;
    if (WORKER_KINDS.has(kind)) {
      const exportName = { 'w-ok': 'ok', 'w-reply': 'reply', 'w-fail': 'fail', 'w-slow': 'slow' }[kind];
      w.sdk.subscribe(cmdType, w.sdkModule.workerHandler(WORKER_MODULE, exportName, { ordered }));
      w.config.workers = true;
    } else {
      w.sdk.subscribe(cmdType, w.callback(cmdType, kind));
    }
    m.subs[cmdType] = { kind, ordered: WORKER_KINDS.has(kind) && ordered };
  }
}

export class Unsubscribe extends Cmd {
  check(m) {
    return this.p.cmdType in m.subs;
  }
  async act(m, w) {
    const had = w.sdk.unsubscribe(this.p.cmdType);
    if (!had) violation('subscriptions', `unsubscribe(${this.p.cmdType}) returned false for a subscribed type`);
    delete m.subs[this.p.cmdType];
  }
}

export class RefUnref extends Cmd {
  async act(m, w) {
    if (this.p.ref) w.sdk.ref();
    else w.sdk.unref();
  }
}

export class ThrowingListener extends Cmd {
  async act(m, w) {
    w.addThrowingListener(this.p.event);
  }
}

export class StatusCallback extends Cmd {
  async act(m, w) {
    w.statusCallbackMode = this.p.mode;
  }
}

// ---- the agent side ------------------------------------------------------------------------

class AgentCmd extends Cmd {
  check(m) {
    return m.linked;
  }
  async run(m, w) {
    // The model's link may be stale (the SDK just closed it): then there is nothing to act on.
    if (w.agentConn()) {
      w.ran.push(this.constructor.name);
      await planted(() => this.act(m, w), this);
    } else w.ran.push('(no-op)');
    await settle(m, w);
  }
}

export class AgentSdkinit extends AgentCmd {
  async act(m, w) {
    const v = this.p.version;
    if (v === null) {
      // No sdkinit: an agent older than 1.8.0; 'started' comes after the handshake timeout.
      if (m.running) {
        const ok = await waitFor(() => w.statusOpen || !w.agentConn(), 1000 * SLOWDOWN);
        if (!ok) violation('status-sequence', "no 'started' after the handshake timeout on a linked connection");
      }
      return;
    }
    await w.agent.write(`{"signal":{"sdkinit":{"version":"${v}"}}}\n`);
    if (m.running) {
      const versionOk = () => w.sdk.agentVersion === v || (!atLeast(v, [1, 8, 0]) && w.sdk.agentVersion === null);
      const ok = await waitFor(() => (w.statusOpen && versionOk()) || !w.agentConn(), 1000 * SLOWDOWN);
      if (!ok) violation('status-sequence', `after sdkinit ${v}: statusOpen ${w.statusOpen}, agentVersion ${w.sdk.agentVersion}`);
    }
  }
}

export class AgentFlap extends AgentCmd {
  async act(m, w) {
    const n = w.connStatuses.length;
    await w.agent.write('{"signal":{"connectionstatus":"disconnected"}}\n');
    if (this.p.back) await w.agent.write('{"signal":{"connectionstatus":"connected"}}\n');
    const want = this.p.back ? 2 : 1;
    if (m.running) {
      const ok = await waitFor(() => w.connStatuses.length >= n + want || !w.agentConn(), CALLBACK_DEADLINE_MS);
      if (!ok) violation('callbacks', `connection status callback not called for an MQTT flap (${JSON.stringify(w.connStatuses.slice(n))})`);
    }
  }
}

/** Bytes of an agent->SDK frame of `kind`; valid ones carry a fresh command id. */
function commandFrame(w, m, kind, cmdType) {
  switch (kind) {
    case 'valid':
    case 'split': {
      const id = w.cmdNext++;
      const sub = m.subs[cmdType];
      w.cmdSent.set(id, { cmdType, sub: sub?.kind ?? null, ordered: sub?.ordered ?? false });
      return { id, bytes: Buffer.from(`{"data":{${JSON.stringify(cmdType)}:{"id":${id},"txt":"ünï €"}}}\n`) };
    }
    case 'unknown':
      return { bytes: Buffer.from('{"data":{"nobody-subscribed":{"x":1}}}\n{"signal":{"from-the-future":{"v":2}}}\n') };
    case 'malformed':
      return { bytes: Buffer.from('{"data":{"a":1,"b":2}}\n[1,2,3]\n{"data":\n"just a string"\n\r\n\n') };
    case 'oversize':
      return { bytes: Buffer.from(`{"data":{"c0":{"pad":"${'y'.repeat(w.options.maxFrameBytes + 100)}"}}}\n`) };
    case 'invalidUtf8':
      return { bytes: Buffer.concat([Buffer.from('{"data":{"c0":{"bad":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}}}\n')]) };
    default:
      throw new Error(`unknown command kind ${kind}`);
  }
}

/** Wait for command `id` to reach its callback, when the model says it must. */
async function expectDelivered(m, w, id, cmdType, why) {
  const sub = m.subs[cmdType];
  if (!sub || !m.running) return;
  const deadline = WORKER_KINDS.has(sub.kind) ? WORKER_DEADLINE_MS : CALLBACK_DEADLINE_MS;
  const ok = await waitFor(() => (w.invoked.get(id) ?? 0) > 0, deadline);
  if (!ok && TRACE) console.log('    not delivered:', id, JSON.stringify(w.log.order.map((c) => [c.key, c.open, c.frames.length])), JSON.stringify(w.sdk.stats()), w.agent.current?.()?.id);
  if (!ok) violation('commands-delivered', `command ${id} for ${cmdType} (${sub.kind}) ${why} never reached its callback within ${deadline} ms`);
}

export class AgentCommand extends AgentCmd {
  async act(m, w) {
    const { kind, cmdType } = this.p;
    const before = stableStats(w.sdk);
    const { id, bytes } = commandFrame(w, m, kind, cmdType);
    if (kind === 'split') {
      const cut = [Math.floor(bytes.length / 3), Math.floor((2 * bytes.length) / 3) + 1];
      await w.agent.writeSplit([bytes.subarray(0, cut[0]), bytes.subarray(cut[0], cut[1]), bytes.subarray(cut[1])]);
    } else {
      await w.agent.write(bytes);
    }
    if (id !== undefined) {
      await expectDelivered(m, w, id, cmdType, 'written on an open connection');
    } else if (m.running) {
      // Skipped or ignored frames: counted, the SDK carries on (checked by the next command).
      const want = kind === 'unknown' ? 'framesIgnored' : 'framesSkipped';
      const ok = await waitFor(() => w.sdk.stats()[want] > before[want] || !w.agentConn(), CALLBACK_DEADLINE_MS);
      if (!ok) violation('frames-skipped', `${kind} frame not counted in ${want}`);
    }
  }
}

export class AgentRead extends AgentCmd {
  async act(m, w) {
    await w.agent.setReading(this.p.state);
    m.reading = this.p.state;
  }
}

/** 'stopping', then a graceful close (the agent reads until the SDK has closed). */
export class AgentStopping extends AgentCmd {
  async act(m, w) {
    const conn = w.agentConn();
    const seen = w.statuses.length;
    await w.agent.write('{"signal":{"agentstatus":"stopping"}}\n');
    if (m.running) {
      // Reported at all, not necessarily last: on an agent that sends no sdkinit, the handshake
      // timeout's 'started' may follow within a poll (protocol.md: statuses pass through as
      // received, and 'started' comes after the timeout), as seed 944674561 found.
      const ok = await waitFor(() => w.statuses.indexOf('stopping', seen) >= 0 || !conn.open, CALLBACK_DEADLINE_MS);
      if (!ok) violation('status-sequence', `'stopping' not passed through (statuses ${JSON.stringify(w.statuses.slice(-4))})`);
    }
    await w.agent.endCurrent();
    await waitFor(() => !conn.open, LINK_DEADLINE_MS);
  }
}

export class AgentClose extends AgentCmd {
  async act(m, w) {
    const conn = w.agentConn();
    const { how, burstAfter } = this.p;
    if (how === 'clean') {
      await w.agent.endCurrent();
    } else if (how === 'reset') {
      w.noteUnclean('reset');
      w.log.markUnclean(conn.key, 'reset');
      await w.agent.destroyCurrent();
      w.uncleanDone();
    } else if (how === 'writeAndClose') {
      // A command the SDK must still deliver: the agent wrote it before it went.
      const cmdType = this.p.cmdType;
      w.noteUnclean('writeAndClose');
      w.log.markUnclean(conn.key, 'writeAndClose');
      const { id, bytes } = commandFrame(w, m, 'valid', cmdType);
      await w.agent.writeAndDestroy(bytes);
      w.uncleanDone();
      if (burstAfter) w.sendBurst({ count: burstAfter, text: 'after close', channel: null, bigAt: -1, bigBytes: 0 });
      await expectDelivered(m, w, id, cmdType, 'written just before the agent closed');
      m.linked = false;
      return;
    }
    if (burstAfter) w.sendBurst({ count: burstAfter, text: 'after close', channel: null, bigAt: -1, bigBytes: 0 });
    await waitFor(() => !conn.open, LINK_DEADLINE_MS);
    m.linked = false;
  }
}

/** SIGKILL the agent process (child backend), then start a new one on the same path. */
export class AgentKill extends Cmd {
  check(m) {
    return m.backend === 'child' && m.agent !== 'dead';
  }
  async act(m, w) {
    w.noteUnclean('kill');
    await w.agent.kill();
    w.uncleanDone();
    w.log.killGeneration();
    if (this.p.burstAfter) w.sendBurst({ count: this.p.burstAfter, text: 'after kill', channel: null, bigAt: -1, bigBytes: 0 });
    m.linked = false;
    if (this.p.respawn) {
      const before = new Set(ioHandles());
      await w.agent.spawn();
      await w.agent.setAutoSdkinit(w.config.agentVersion ?? null);
      await w.agent.listen();
      for (const h of ioHandles()) if (!before.has(h)) w.agentHandles.add(h);
      m.agent = 'accept';
    } else {
      m.agent = 'dead';
    }
  }
}

/** The socket path: listen, refuse (a stale socket file), down (no file), remove while listening, recreate. */
export class AgentPath extends Cmd {
  check(m) {
    return m.agent !== 'dead';
  }
  async act(m, w) {
    const { to } = this.p;
    switch (to) {
      case 'accept':
        if (w.agent.mode !== 'accept') {
          if (w.agent.mode === 'removed') await w.agent.unlisten('none');
          await w.agent.listen();
        }
        break;
      case 'refuse':
        await w.agent.unlisten('stale');
        break;
      case 'down':
        await w.agent.unlisten('none');
        break;
      case 'remove':
        await w.agent.removePath();
        break;
      case 'recreate':
        await w.agent.unlisten('none');
        await w.agent.listen();
        break;
    }
    m.agent = w.agent.mode;
  }
}

function atLeast(v, min) {
  const parts = String(v).split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((parts[i] ?? 0) !== min[i]) return (parts[i] ?? 0) > min[i];
  }
  return true;
}

// ---- arbitraries ---------------------------------------------------------------------------

const cmdType = fc.constantFrom(...CMD_TYPES);
const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.constantFrom('', 'plain', '€ ünï 😀', '\u2028\u2029', '"\\\n', '\ud800 lone'),
);

const NAMES = {
  Start,
  Stop,
  StopRacing,
  SendBurst,
  CallAgent,
  Subscribe,
  Unsubscribe,
  RefUnref,
  ThrowingListener,
  StatusCallback,
  AgentSdkinit,
  AgentFlap,
  AgentCommand,
  AgentRead,
  AgentStopping,
  AgentClose,
  AgentKill,
  AgentPath,
};

/** Build a command from its printed form ["Name", {params}]. */
export function commandFrom([name, params]) {
  const C = NAMES[name];
  if (!C) throw new Error(`unknown simtest command ${name}`);
  return new C(params);
}

const mk = (C) => (p) => new C(p);

/** The arbitraries fc.commands picks from: one weighted choice (the common operations more often). */
export function commandArbitraries() {
  const w = (weight, arbitrary) => ({ weight, arbitrary });
  const one = (C) => fc.constant(null).map(() => new C({}));
  return [
    fc.oneof(
      w(3, one(Start)),
      w(2, one(Stop)),
      w(2, fc.record({ what: fc.constantFrom('sdkinit', 'start', 'send', 'agentClose', 'flap') }).map(mk(StopRacing))),
      w(
        8,
        fc
          .record({
            count: fc.oneof(w(8, fc.integer({ min: 1, max: 20 })), w(2, fc.integer({ min: 21, max: 300 })), w(1, fc.integer({ min: 301, max: 3000 }))),
            text,
            channel: fc.option(fc.oneof(fc.constantFrom('', 'heating', 'ch/1'), fc.string({ unit: 'binary', maxLength: 6 })), { nil: null }),
            bigAt: fc.integer({ min: -1, max: 3 }),
            bigBytes: fc.constantFrom(0, 1000, 4000, 30 * 1024, 32 * 1024 - 120, 64 * 1024 - 200, 70 * 1024),
          })
          .map(mk(SendBurst)),
      ),
      w(5, fc.record({ bad: fc.boolean(), text, more: fc.oneof(w(6, fc.constant(0)), w(1, fc.constantFrom(50, 3000))) }).map(mk(CallAgent))),
      w(
        5,
        fc
          .record({
            cmdType,
            kind: fc.oneof(w(6, fc.constantFrom('return', 'throw', 'reject', 'slow')), w(1, fc.constantFrom('w-ok', 'w-reply', 'w-fail', 'w-slow'))),
            ordered: fc.boolean(),
          })
          .map(mk(Subscribe)),
      ),
      w(1, fc.record({ cmdType }).map(mk(Unsubscribe))),
      w(1, fc.record({ ref: fc.boolean() }).map(mk(RefUnref))),
      w(
        1,
        fc
          .record({ event: fc.constantFrom('connectError', 'protocolError', 'drop', 'drain', 'callbackError', 'agentStatus', 'connectionStatus') })
          .map(mk(ThrowingListener)),
      ),
      w(1, fc.record({ mode: fc.constantFrom('return', 'throw', 'reject') }).map(mk(StatusCallback))),
      w(4, fc.record({ version: fc.constantFrom('1.8.0', '1.9.3', '2.0.0', '1.7.9', '1.6.3', null) }).map(mk(AgentSdkinit))),
      w(2, fc.record({ back: fc.boolean() }).map(mk(AgentFlap))),
      w(
        6,
        fc
          .record({
            kind: fc.oneof(w(5, fc.constantFrom('valid', 'split')), w(3, fc.constantFrom('unknown', 'malformed', 'oversize', 'invalidUtf8'))),
            cmdType,
          })
          .map(mk(AgentCommand)),
      ),
      w(2, fc.record({ state: fc.constantFrom('paused', 'slow', 'reading') }).map(mk(AgentRead))),
      w(2, one(AgentStopping)),
      w(3, fc.record({ how: fc.constantFrom('clean', 'reset', 'writeAndClose'), cmdType, burstAfter: fc.constantFrom(0, 0, 3, 40) }).map(mk(AgentClose))),
      w(2, fc.record({ respawn: fc.boolean(), burstAfter: fc.constantFrom(0, 5) }).map(mk(AgentKill))),
      w(2, fc.record({ to: fc.constantFrom('accept', 'refuse', 'down', 'remove', 'recreate') }).map(mk(AgentPath))),
    ),
  ];
}

export { threadCount };
