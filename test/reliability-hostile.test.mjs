// Hostile agents against an SDK alone in its own process, its memory measured from outside:
// an agent that accepts and never reads, and an agent that floods (garbage at full speed, a 100 MB
// line without a newline, invalid UTF-8, JSON nested as deep as a frame allows, commands far
// faster than a slow callback takes them). After each, a valid command must still be dispatched.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { transports, startSim, startRawAgent, waitFor, DEADLINE_MS, SLOWDOWN } from './helpers.mjs';
import { forkSdk } from './fixtures/rel-child.mjs';

const MiB = 1024 * 1024;
// Under `npm run test:asan` the ASan allocator keeps freed memory in quarantine on purpose: RSS then
// measures the sanitiser, not the SDK, and the RSS bounds are left to the normal run.
const RSS_MEANINGFUL = !/libasan/.test(process.env.LD_PRELOAD ?? '');
const mib = (n) => `${(n / MiB).toFixed(1)} MiB`;

/** Peak and current RSS of `pid` since the last resetPeak(): the kernel's own figures. */
function memOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}
function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false; // not permitted: VmHWM then covers the whole life, which only loosens the check
  }
}

/** Write `total` bytes from `fill` (a Buffer, repeated) to `socket`, respecting backpressure. */
async function pour(socket, total, fill) {
  for (let sent = 0; sent < total; sent += fill.length) {
    const part = total - sent >= fill.length ? fill : fill.subarray(0, total - sent);
    if (!socket.write(part)) await new Promise((resolve) => socket.once('drain', resolve));
  }
}

for (const transport of transports()) {
  describe(`hostile agents, memory measured [${transport}]`, () => {
    test('an agent that accepts and never reads: send() stays cheap, memory stays flat from 2x to 40x the queue bound, drops counted, stop() within its timeout', async (t) => {
      const agent = await startRawAgent(t, { paused: true });
      const maxQueueBytes = MiB;
      const stopTimeoutMs = 500;
      const app = await forkSdk(t, {
        socketPath: agent.path,
        transport,
        options: { maxQueueBytes, highWaterMark: MiB / 4, stopTimeoutMs, handshakeTimeoutMs: 50 },
      });
      await app.ask('start');
      await app.waitEvent((e) => e.event === 'agentStatus' && e.status === 'started', "'started'");
      await app.ask('gcEvery', { ms: 20 });
      const pad = 'p'.repeat(100);
      const batch = 10_000; // ~1.5 MB of frames per request
      const sendTimes = [];
      const sendBatches = async (n, from) => {
        for (let i = 0; i < n; i++) {
          const r = await app.ask('send', { count: batch, pad, from: from + i * batch });
          sendTimes.push(r.slowestMs);
        }
      };
      await sendBatches(2, 0); // 2x the bound: the queue is full and dropping
      const early = await app.ask('measure');
      resetPeak(app.child.pid);
      await sendBatches(38, 2 * batch); // 20x as much again
      const late = await app.ask('measure');
      const peak = memOf(app.child.pid).peak;
      const s = late.stats;
      t.diagnostic(
        `RSS after 2x ${mib(early.rss)}, after 40x ${mib(late.rss)}, peak ${mib(peak)}; ` +
          `heap+buffers ${mib(early.heapUsed + early.arrayBuffers)} -> ${mib(late.heapUsed + late.arrayBuffers)}; slowest send ${Math.max(...sendTimes).toFixed(2)} ms; ` +
          `dropped ${s.dropped.overflow} of ${s.accepted}; buffered ${s.bufferedBytes} bytes`,
      );
      assert.equal(s.accepted, 40 * batch);
      assert.equal(s.accepted, s.written + s.buffered + s.dropped.total, 'every accepted message accounted for');
      assert.ok(s.dropped.overflow > 0.8 * s.accepted, `most were dropped (${s.dropped.overflow})`);
      // The bound plus the writer's in-flight window (at most one write batch).
      assert.ok(s.bufferedBytes <= maxQueueBytes + MiB, `queued ${s.bufferedBytes} bytes`);
      // Keeping what was sent would take ~57 MB more; the bound keeps the footprint to allocator and
      // V8 slack (peaks of 1-6 MiB with the child's young generation capped, see rel-child.mjs).
      if (RSS_MEANINGFUL) assert.ok(late.rss - early.rss < 16 * MiB, `RSS grew ${mib(late.rss - early.rss)} while 38 MB more were sent`);
      if (RSS_MEANINGFUL) assert.ok(peak - early.rss < 16 * MiB, `RSS peaked ${mib(peak - early.rss)} above the 2x level`);
      assert.ok(late.heapUsed + late.arrayBuffers - early.heapUsed - early.arrayBuffers < 2 * MiB, 'JS heap and buffers flat');
      const stop = await app.ask('stop');
      const after = (await app.ask('stats')).stats;
      t.diagnostic(`stop() took ${stop.ms.toFixed(0)} ms (stopTimeoutMs ${stopTimeoutMs}); dropped.stop ${after.dropped.stop}`);
      assert.ok(stop.ms < stopTimeoutMs + 1000 * (DEADLINE_MS / 10_000), `stop() took ${stop.ms.toFixed(0)} ms`);
      assert.equal(after.buffered, 0);
      assert.ok(after.dropped.stop > 0, 'what could not be written was counted as dropped.stop');
      assert.equal(after.accepted, after.written + after.dropped.total);
    });

    /** An SDK child linked to a simulator, with marker/deep/flood subscriptions and frequent GCs. */
    async function floodSetup(t) {
      const sim = await startSim(t, { keepFrames: false });
      const app = await forkSdk(t, { socketPath: sim.socketPath, transport, options: { handshakeTimeoutMs: 50 } }, { deadlineMs: DEADLINE_MS * 3 });
      await app.ask('subscribe', { cmd: 'marker' });
      await app.ask('subscribe', { cmd: 'deep' });
      await app.ask('subscribe', { cmd: 'flood', busyMs: 0.2 });
      await app.ask('start');
      await app.waitEvent((e) => e.event === 'agentStatus' && e.status === 'started', "'started'");
      await app.ask('gcEvery', { ms: 20 });
      const base = (await app.ask('measure')).rss;
      let markers = 0;
      const figures = {};
      /** Run `hostile`, then a marker command that must be dispatched; returns the RSS peak above the start. */
      const phase = async (name, hostile) => {
        resetPeak(app.child.pid);
        const errorsBefore = (await app.ask('stats')).protocolErrors.count;
        await app.ask('timerGap');
        const t0 = Date.now();
        await hostile();
        sim.pushCommand('marker', { i: markers++ });
        await waitFor(async () => (await app.ask('commands', { cmd: 'marker' })).count === markers, `the marker after ${name}`, DEADLINE_MS * 3);
        const peak = memOf(app.child.pid).peak;
        const timerGapMs = (await app.ask('timerGap')).ms;
        const after = await app.ask('measure');
        figures[name] = {
          ms: Date.now() - t0,
          timerGapMs: Math.round(timerGapMs),
          peakOverBase: mib(peak - base),
          afterGcOverBase: mib(after.rss - base),
          protocolErrors: (await app.ask('stats')).protocolErrors.count - errorsBefore,
        };
        return peak - base;
      };
      return { sim, app, socket: sim.clients[0].socket, base, phase, figures };
    }

    test('an agent that writes garbage, a 100 MB line, invalid UTF-8, deep nesting: bounded, and serving after each', async (t) => {
      const { sim, app, socket, base, phase, figures } = await floodSetup(t);
      // Random bytes at full speed, newlines and all: 32 MB.
      const garbage = randomFillSync(Buffer.alloc(MiB));
      const garbageGrowth = await phase('garbage', async () => {
        await pour(socket, 32 * MiB, garbage);
        socket.write('\n');
      });
      // One line of 100 MB without a newline until the end.
      const longGrowth = await phase('100 MB line', async () => {
        await pour(socket, 100 * MiB, Buffer.alloc(MiB, 'a'));
        socket.write('\n');
      });
      // 20 000 command frames whose params are not valid UTF-8.
      const invalidUtf8Growth = await phase('invalid UTF-8', async () => {
        const bad = Buffer.concat([Buffer.from('{"data":{"marker":{"s":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80]), Buffer.from('"}}}\n')]);
        await pour(socket, bad.length * 20_000, bad);
      });
      // Nesting as deep as the 1 MiB frame limit allows: valid (a command), and never closed.
      const deepGrowth = await phase('deep nesting', async () => {
        const depth = 500_000;
        socket.write(`{"data":{"deep":${'['.repeat(depth)}${']'.repeat(depth)}}}\n`);
        socket.write(`${'{"a":'.repeat(200_000)}\n`);
      });
      const { stats } = await app.ask('stats');
      t.diagnostic(JSON.stringify({ base: mib(base), figures, framesSkipped: stats.framesSkipped }));

      assert.equal(sim.counts.connections, 1, 'the SDK never dropped the connection');
      assert.equal(figures['100 MB line'].protocolErrors, 1, 'the long line is one skipped frame');
      assert.equal(figures['invalid UTF-8'].protocolErrors, 20_000, 'each invalid frame reported');
      assert.ok(figures.garbage.protocolErrors > 1000, 'garbage lines reported');
      assert.equal((await app.ask('commands', { cmd: 'deep' })).count, 1, 'the deep but valid command dispatched');
      // Bounded: a few times maxFrameBytes (1 MiB) and the read buffers, never the volume poured in.
      if (RSS_MEANINGFUL) assert.ok(garbageGrowth < 20 * MiB, `garbage: RSS peaked ${mib(garbageGrowth)} above the start while 32 MiB were poured in`);
      // Keeping the line would take 100 MB.
      if (RSS_MEANINGFUL) assert.ok(longGrowth < 32 * MiB, `100 MB line: RSS peaked ${mib(longGrowth)} above the start`);
      if (RSS_MEANINGFUL) assert.ok(invalidUtf8Growth < 20 * MiB, `invalid UTF-8: RSS peaked ${mib(invalidUtf8Growth)} above the start`);
      // Parsing a 1 MB frame nested 500 000 deep builds 500 000 arrays: the frame limit bounds that too.
      if (RSS_MEANINGFUL) assert.ok(deepGrowth < 128 * MiB, `deep nesting: RSS peaked ${mib(deepGrowth)} above the start`);
      await app.ask('stop');
    });

    test('an agent that pushes commands far faster than a slow callback takes them: all dispatched in order, memory bounded', async (t) => {
      const { sim, app, socket, base, phase, figures } = await floodSetup(t);
      // 10 000 commands of ~8 KB (80 MB) at full speed to a callback that takes 0.2 ms each.
      const growth = await phase('command flood', async () => {
        const pad = 'f'.repeat(8000);
        for (let i = 0; i < 10_000; i++) {
          if (!socket.write(`{"data":{"flood":{"i":${i},"pad":"${pad}"}}}\n`)) await new Promise((resolve) => socket.once('drain', resolve));
        }
      });
      const flood = await app.ask('commands', { cmd: 'flood' });
      t.diagnostic(JSON.stringify({ base: mib(base), figures }));
      assert.equal(sim.counts.connections, 1, 'the SDK never dropped the connection');
      assert.equal(flood.count, 10_000, 'every flood command dispatched');
      assert.equal(flood.ordered, true, 'in order');
      // The kernel's socket buffer is the only queue an app needs here: an SDK that reads ahead of its
      // callbacks holds the whole 80 MB.
      if (RSS_MEANINGFUL) assert.ok(growth < 20 * MiB, `RSS peaked ${mib(growth)} above the start while 80 MB of commands were pushed`);
      // The flood takes seconds of callback time; the application's 20 ms timer still gets its turns
      // (between socket reads on the JS transport, between deliveries of at most ~1.3 MB on native).
      assert.ok(figures['command flood'].timerGapMs < 500 * SLOWDOWN, `the app's timer waited ${figures['command flood'].timerGapMs} ms during the flood`);
      await app.ask('stop');
    });
  });
}
