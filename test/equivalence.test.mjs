// Randomised equivalence of the two transports: the same seeded script of sends (with and without
// channels, bursts, yields), calls, agent "stopping" holds and agent crashes gives the same frames
// in the same order on every connection, and the same counts. Reproduce a failure with
// IOTTLY_EQUIV_SEED=<seed printed in the failure>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentSimulator, sdk, tempSocket, makeSDK, startAndWait, waitFor } from './helpers.mjs';

// A fixed set by default, so CI is reproducible; IOTTLY_EQUIV_RANDOM=N runs N fresh seeds instead (each
// printed), IOTTLY_EQUIV_SEED pins one. 1180716889 and 1106697368 once caught the test crashing the
// agent before a call's write was confirmed; they stay in the fixed set.
const FIXED_SEEDS = [1121764686, 1553196387, 1652422904, 687538220, 1180716889, 1106697368];
const fresh = (n) => Array.from({ length: n }, () => Math.floor(Math.random() * 2 ** 31));
const SEEDS = process.env.IOTTLY_EQUIV_SEED
  ? [Number(process.env.IOTTLY_EQUIV_SEED)]
  : process.env.IOTTLY_EQUIV_RANDOM
    ? fresh(Number(process.env.IOTTLY_EQUIV_RANDOM))
    : FIXED_SEEDS;

function rng(seed) {
  // mulberry32: small, fast, good enough to shuffle a test script
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ['a', 'b', 'z', ' ', '"', '\\', '\n', '\u00e9', '\u2028', '\u6f22', '\ud83d\ude80', '{', '}'];

function makeScript(seed) {
  const r = rng(seed);
  const int = (n) => Math.floor(r() * n);
  const str = (max) => Array.from({ length: int(max) }, () => ALPHABET[int(ALPHABET.length)]).join('');
  let seq = 0;
  const message = () => {
    const m = { seq: seq++ };
    if (r() < 0.5) m.text = str(30);
    if (r() < 0.3) m.values = Array.from({ length: int(6) }, () => (r() < 0.5 ? int(1e6) : r()));
    if (r() < 0.2) m.nested = { deep: { flag: r() < 0.5, s: str(8) } };
    // Large frames cross batch and write boundaries; rare enough that a run's records stay small.
    if (r() < 0.01) m.big = 'x'.repeat(20_000 + int(100_000));
    return m;
  };
  const channel = () => (r() < 0.3 ? `ch-${str(6)}` : undefined);
  const ops = [];
  const steps = 40 + int(40);
  for (let i = 0; i < steps; i++) {
    const p = r();
    if (p < 0.35) ops.push({ op: 'send', msg: message(), channel: channel() });
    else if (p < 0.55) ops.push({ op: 'burst', msgs: Array.from({ length: 1 + int(3000) }, () => [message(), channel()]) });
    else if (p < 0.7) ops.push({ op: 'yield', macro: r() < 0.5 });
    else if (p < 0.8) ops.push({ op: 'call', cmd: `script_${int(5)}`, args: { n: int(100), s: str(10) } });
    else if (p < 0.9) ops.push({ op: 'hold', msgs: Array.from({ length: int(50) }, () => [message(), channel()]) });
    else ops.push({ op: 'crash', away: Array.from({ length: int(12) }, () => [message(), channel()]) });
  }
  return ops;
}

const count = (list, s) => list.filter((x) => x === s).length;

async function run(t, transport, script) {
  const sim = new AgentSimulator({ socketPath: tempSocket(t) });
  await sim.listen();
  t.after(() => sim.close());
  const client = makeSDK(t, transport, sim.socketPath, {
    maxBufferedMsgs: 7,
    maxQueueBytes: 512 * 1024 * 1024,
    highWaterMark: 512 * 1024 * 1024,
    reconnectIntervalMs: 10,
    handshakeTimeoutMs: 50,
  });
  await startAndWait(client);
  // Everything handed over has reached the agent: the only state from which a crash is deterministic.
  const state = () => {
    const s = client.stats();
    return { buffered: s.buffered, written: s.written, callsWritten: s.callsWritten, atAgent: sim.counts.telemetry, callsAtAgent: sim.counts.calls + sim.counts.errors, errors: sim.counts.errors, invalid: sim.counts.invalid, cbErrors: s.callbackErrors };
  };
  // Counters can lag the wire (the JS transport confirms a write on the next tick), so the agent must
  // also have seen every call the script made before a crash is deterministic.
  let callsMade = 0;
  const quiet = () =>
    waitFor(() => {
      const s = state();
      return s.buffered === 0 && s.atAgent === s.written && s.callsAtAgent === s.callsWritten && sim.counts.calls === callsMade;
    }, `${transport}: everything sent at the agent`).catch((err) => {
      throw new Error(`${err.message}: ${JSON.stringify(state())}`);
    });

  for (const step of script) {
    switch (step.op) {
      case 'send':
        client.send(step.msg, step.channel);
        break;
      case 'burst':
        for (const [m, c] of step.msgs) client.send(m, c);
        break;
      case 'yield':
        await new Promise((resolve) => (step.macro ? setImmediate(resolve) : queueMicrotask(resolve)));
        break;
      case 'call':
        client.callAgent(step.cmd, step.args);
        callsMade++;
        break;
      case 'hold': {
        const before = count(client.statuses, 'stopping');
        sim.sendAgentStatus('stopping');
        await waitFor(() => count(client.statuses, 'stopping') > before, `${transport}: 'stopping' seen`);
        for (const [m, c] of step.msgs) client.send(m, c);
        const running = count(client.statuses, 'running');
        sim.sendAgentStatus('running');
        await waitFor(() => count(client.statuses, 'running') > running, `${transport}: 'running' seen`);
        break;
      }
      case 'crash': {
        await quiet();
        const stopped = count(client.statuses, 'stopped');
        const started = count(client.statuses, 'started');
        sim.kill();
        await waitFor(() => count(client.statuses, 'stopped') > stopped && !client.linked, `${transport}: 'stopped' after the crash`);
        for (const [m, c] of step.away) client.send(m, c);
        await sim.listen();
        await waitFor(() => count(client.statuses, 'started') > started, `${transport}: 'started' again`);
        break;
      }
    }
  }
  await client.stop();
  await waitFor(() => sim.counts.goodbyes === 1 && sim.clients.length === 0, `${transport}: goodbye and close`);

  const connections = new Map();
  for (const rec of sim.frames) {
    if (!connections.has(rec.client.id)) connections.set(rec.client.id, []);
    connections.get(rec.client.id).push(rec);
  }
  const s = client.stats();
  return {
    connections: [...connections.values()].map((recs) => ({
      helloFirst: recs[0]?.frame?.signal?.sdkclient?.status === 'connected',
      telemetry: recs.filter((r) => r.frame.data).map((r) => r.raw),
      calls: recs.filter((r) => r.frame.signal?.sdkclient?.call).map((r) => r.raw),
      last: recs.at(-1)?.frame?.signal?.sdkclient?.status ?? null,
    })),
    stats: {
      accepted: s.accepted,
      written: s.written,
      dropped: s.dropped,
      callsWritten: s.callsWritten,
      callsDropped: s.callsDropped,
      reconnects: s.reconnects,
    },
  };
}

test('both transports deliver the same frames in the same order for the same random script', { skip: !sdk.nativeAvailable() && 'the native addon is not built' }, async (t) => {
  for (const seed of SEEDS) {
    await t.test(`seed ${seed}`, async (st) => {
      const script = makeScript(seed);
      const js = await run(st, 'js', script);
      const native = await run(st, 'native', script);
      const where = `(seed ${seed}; rerun with IOTTLY_EQUIV_SEED=${seed})`;
      assert.equal(native.connections.length, js.connections.length, `connections ${where}`);
      for (let i = 0; i < js.connections.length; i++) {
        const a = js.connections[i];
        const b = native.connections[i];
        assert.ok(a.helloFirst && b.helloFirst, `hello first on connection ${i} ${where}`);
        assert.equal(b.telemetry.length, a.telemetry.length, `telemetry count on connection ${i} ${where}`);
        assert.deepEqual(b.telemetry, a.telemetry, `telemetry on connection ${i} ${where}`);
        assert.deepEqual(b.calls, a.calls, `calls on connection ${i} ${where}`);
      }
      assert.equal(js.connections.at(-1).last, 'disconnected', `goodbye last (js) ${where}`);
      assert.equal(native.connections.at(-1).last, 'disconnected', `goodbye last (native) ${where}`);
      assert.deepEqual(native.stats, js.stats, `counters ${where}`);
    });
  }
});
