// callAgent() against an agent that answers sdkinit 1.8.0 and then never reads: while linked, at
// most maxQueueBytes of call frames wait to be written; the calls past that are dropped, counted
// (callsDropped) and reported ('drop' with counts.calls), and the SDK's memory stays bounded. The
// SDK runs alone in a child process (this file, forked with a role argument) so that its memory
// is measured apart from the agent's.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { transports, startRawAgent, makeSDK, waitFor, DEADLINE_MS } from './helpers.mjs';

const MiB = 1024 * 1024;
const mib = (n) => `${(n / MiB).toFixed(1)} MiB`;
const CALLS = 200_000;
const CHUNK = 10_000;
// Under `npm run test:asan` the ASan allocator keeps freed memory in quarantine: RSS then measures
// the sanitiser, so only the heap is checked there.
const RSS_MEANINGFUL = !/libasan/.test(process.env.LD_PRELOAD ?? '');

if (process.argv[2] === '--call-bound-child') {
  runChild(JSON.parse(process.argv[3]));
} else {
  for (const transport of transports()) {
    describe(`callAgent() to an agent that does not read [${transport}]`, () => {
      test(`${CALLS} calls: bounded, the excess dropped and counted, every call accounted for`, async (t) => {
        const agent = await startRawAgent(t, { paused: true });
        agent.server.on('connection', (socket) => socket.write('{"signal":{"sdkinit":{"version":"1.8.0"}}}\n'));
        const child = fork(fileURLToPath(import.meta.url), ['--call-bound-child', JSON.stringify({ socketPath: agent.path, transport })], {
          execArgv: ['--expose-gc', '--max-semi-space-size=1'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '32768' },
        });
        t.after(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        });
        const messages = [];
        child.on('message', (m) => messages.push(m));
        const next = async (kind) => {
          await waitFor(() => messages.some((m) => m.kind === kind) || child.exitCode !== null, `the child's '${kind}'`, 6 * DEADLINE_MS);
          const m = messages.find((x) => x.kind === kind);
          if (!m) throw new Error(`the child exited (${child.exitCode}) before '${kind}'`);
          if (m.error) throw new Error(m.error);
          return m;
        };

        const r = await next('called');
        const s = r.stats;
        t.diagnostic(
          `written ${s.callsWritten}, dropped ${s.callsDropped}, buffered ${s.callsBuffered}; ` +
            `RSS ${mib(r.before.rss)} -> ${mib(r.after.rss)} (peak ${mib(r.peakRss)}); ` +
            `heap+buffers ${mib(r.before.heap)} -> ${mib(r.after.heap)}`,
        );
        assert.equal(s.callsAccepted, CALLS);
        assert.ok(s.callsDropped > 0, 'calls past the bound were dropped');
        assert.equal(s.callsWritten + s.callsDropped + s.callsBuffered, CALLS, 'every call accounted for');
        assert.equal(r.dropEventCalls, s.callsDropped, "'drop' events with counts.calls add up to callsDropped");
        assert.equal(s.written + s.dropped.total + s.buffered, s.accepted);
        // The bound is 4 MiB of frames (the default maxQueueBytes); unbounded, 200 000 calls held
        // about 235 MB.
        assert.ok(r.after.heap - r.before.heap < 32 * MiB, `heap+buffers grew ${mib(r.after.heap - r.before.heap)}`);
        if (RSS_MEANINGFUL) assert.ok(r.peakRss - r.before.rss < 96 * MiB, `RSS peaked ${mib(r.peakRss - r.before.rss)} over the start`);

        // The agent reads: what was buffered is written, and exactly the written calls arrive.
        const conn = agent.conns[0];
        conn.socket.resume();
        child.send({ op: 'drain' });
        const d = await next('drained');
        const calls = () => conn.lines().filter((l) => l.includes('"call":')).length;
        await waitFor(() => calls() === d.stats.callsWritten, `${d.stats.callsWritten} calls at the agent`);
        assert.equal(d.stats.callsBuffered, 0);
        assert.equal(d.stats.callsWritten + d.stats.callsDropped, CALLS);
        assert.equal(agent.conns.length, 1, 'one connection throughout');
        child.send({ op: 'stop' });
        await next('stopped');
      });

      test("calls waiting when the link drops are dropped, counted and reported as 'calls'", async (t) => {
        const agent = await startRawAgent(t, { paused: true });
        agent.server.on('connection', (socket) => socket.write('{"signal":{"sdkinit":{"version":"1.8.0"}}}\n'));
        const client = makeSDK(t, transport, agent.path, { maxQueueBytes: 64 * 1024, highWaterMark: 16 * 1024, reconnectIntervalMs: 20 });
        const drops = [];
        client.on('drop', (d) => drops.push(d));
        client.start();
        await waitFor(() => client.statuses.includes('started'), "'started'");
        const N = 5000;
        for (let i = 0; i < N; i++) client.callAgent('script', { n: i, pad: 'x'.repeat(40) });
        const before = client.stats();
        assert.ok(before.callsBuffered > 0, 'calls wait for the agent');
        assert.ok(before.callsDropped > 0, 'past the bound, calls are dropped');
        assert.equal(before.callsWritten + before.callsDropped + before.callsBuffered, N);
        agent.conns[0].socket.destroy();
        await waitFor(() => client.statuses.includes('stopped'), "'stopped'");
        const s = client.stats();
        assert.equal(s.callsBuffered, 0, 'calls are not kept across connections');
        assert.ok(s.callsDropped >= before.callsDropped + before.callsBuffered - (s.callsWritten - before.callsWritten));
        assert.equal(s.callsWritten + s.callsDropped, N);
        const reported = () => drops.reduce((n, d) => n + (d.counts.calls ?? 0), 0);
        await waitFor(() => reported() === s.callsDropped, `'drop' events adding up to ${s.callsDropped} calls (have ${reported()})`);
      });

      test('error frames of throwing callbacks share the bound, are dropped silently past it and never count as calls', async (t) => {
        const agent = await startRawAgent(t, { paused: true });
        const N = 10_000;
        agent.server.on('connection', (socket) => {
          socket.write('{"signal":{"sdkinit":{"version":"1.8.0"}}}\n');
          socket.write('{"data":{"boom":{"n":1}}}\n'.repeat(N));
        });
        const client = makeSDK(t, transport, agent.path, { maxQueueBytes: 64 * 1024, highWaterMark: 16 * 1024 });
        client.on('callbackError', () => {});
        client.subscribe('boom', () => {
          throw new RangeError('a callback that always throws, with a message long enough to matter');
        });
        client.start();
        await waitFor(() => client.stats().callbackErrors === N, `${N} callback errors`);
        let s = client.stats();
        assert.equal(s.callsWritten, 0, 'error frames are not calls');
        assert.equal(s.callsDropped, 0, 'error frames dropped past the bound are not counted as calls');
        assert.equal(s.callsBuffered, 0);
        const conn = agent.conns[0];
        conn.socket.resume();
        // Error frames still waiting share the bound with calls, so a call made while they drain may
        // be dropped: call until one is written. Each call ends up written or dropped.
        let calls = 0;
        while (client.stats().callsWritten === 0) {
          client.callAgent('after', { n: calls++ });
          await waitFor(() => {
            const x = client.stats();
            return x.callsWritten + x.callsDropped === calls;
          }, `call #${calls} written or dropped`);
          // A dropped call is known at once: let the event loop turn, so that the queue drains.
          await new Promise((resolve) => setImmediate(resolve));
        }
        const errors = () => conn.lines().filter((l) => l.includes('"error":')).length;
        await waitFor(() => conn.lines().some((l) => l.includes('"call":')), 'the call at the agent');
        s = client.stats();
        t.diagnostic(`${errors()} of ${N} error frames reached the agent; ${calls} calls made to get one through`);
        assert.ok(errors() > 0 && errors() < N, `some error frames arrived, not all (${errors()})`);
        assert.equal(s.callsWritten, 1);
        assert.equal(s.callsDropped, calls - 1, 'only calls count as calls');
      });
    });
  }
}

function runChild({ socketPath, transport }) {
  const require = createRequire(import.meta.url);
  const { IottlySDK } = require('../dist/index.js');
  const client = new IottlySDK('call-bound', { socketPath, transport, handshakeTimeoutMs: 60_000 });
  let dropEventCalls = 0;
  client.on('drop', (d) => (dropEventCalls += d.counts.calls ?? 0));
  let peakRss = 0;
  const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage.rss()));
  const measure = () => {
    global.gc();
    global.gc();
    const m = process.memoryUsage();
    return { rss: m.rss, heap: m.heapUsed + m.arrayBuffers };
  };
  const post = (m) => process.send(m);
  const fail = (err) => post({ kind: 'error', error: String(err?.stack ?? err) });
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  const flushDrops = async () => {
    // 'drop' events are rate-limited to one a second: wait for the last one.
    const t0 = Date.now();
    while (dropEventCalls < client.stats().callsDropped && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
  };

  client.on('agentStatus', async (status) => {
    if (status !== 'started') return;
    try {
      await turn();
      const before = measure();
      peakRss = before.rss;
      const timer = setInterval(sample, 5);
      for (let i = 0; i < CALLS; i += CHUNK) {
        for (let j = i; j < i + CHUNK; j++) {
          client.callAgent('script', { n: j, pad: 'x'.repeat(20) });
        }
        sample();
        await turn();
      }
      clearInterval(timer);
      sample();
      const after = measure();
      await flushDrops();
      post({ kind: 'called', stats: client.stats(), before, after, peakRss, dropEventCalls });
    } catch (err) {
      fail(err);
    }
  });
  process.on('message', async ({ op }) => {
    try {
      if (op === 'drain') {
        const t0 = Date.now();
        while (client.stats().callsBuffered > 0 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 10));
        post({ kind: 'drained', stats: client.stats() });
      } else if (op === 'stop') {
        await client.stop();
        post({ kind: 'stopped' });
        process.disconnect();
      }
    } catch (err) {
      fail(err);
    }
  });
  process.on('disconnect', () => process.exit(0));
  client.start();
}
