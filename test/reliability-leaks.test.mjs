// Leaks: start/stop cycles with and without an agent, rounds of many instances, worker threads
// terminated mid-stream. Each runs in a fresh process (test/fixtures/rel-leak-child.mjs) that reports
// its open fds, threads, RSS and JS heap after a warm-up and after the run; they must come back.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transports, startSim, tempSocket, waitFor, DEADLINE_MS } from './helpers.mjs';

const CHILD = fileURLToPath(new URL('./fixtures/rel-leak-child.mjs', import.meta.url));
const MiB = 1024 * 1024;
const mib = (n) => `${(n / MiB).toFixed(2)} MiB`;
/**
 * What "back to the starting level" allows: allocator and V8 bookkeeping (RSS drifts a few MiB in the
 * first thousands of cycles whether 1 000 or 4 000 are run), not a leak per cycle: 8 MiB over 1 000
 * cycles is 8 KiB a cycle, and the JS heap, fds and threads are checked much tighter.
 */
const RSS_TOLERANCE = 8 * MiB;
const HEAP_TOLERANCE = MiB;

function runChild(t, config) {
  const child = fork(CHILD, [JSON.stringify(config)], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '32768' },
  });
  t.after(() => child.exitCode === null && child.kill('SIGKILL'));
  const messages = [];
  child.on('message', (m) => messages.push(m));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`leak child (${config.mode}) did not finish in time`));
    }, DEADLINE_MS * 12);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const error = messages.find((m) => m.error);
      if (code !== 0 || error) return reject(new Error(`leak child (${config.mode}) exited ${code}: ${error?.error ?? ''}`));
      resolve({ base: messages.find((m) => m.phase === 'baseline'), end: messages.find((m) => m.phase === 'end'), collected: messages.find((m) => 'collected' in m)?.collected });
    });
  });
}

function assertBack(t, { base, end }, what) {
  t.diagnostic(
    `${what}: fds ${base.fds} -> ${end.fds}, inotify watches ${base.watches} -> ${end.watches}, threads ${base.threads} -> ${end.threads}, ` +
      `RSS ${mib(base.rss)} -> ${mib(end.rss)} (${mib(end.rss - base.rss)}), heap ${mib(base.heapUsed)} -> ${mib(end.heapUsed)}`,
  );
  assert.equal(end.fds, base.fds, `open fds back to the starting level (at the start: ${base.fdTargets.join(' ')}; at the end: ${end.fdTargets.join(' ')})`);
  assert.equal(end.watches, base.watches, 'inotify watches back to the starting level');
  assert.equal(end.threads, base.threads, 'threads back to the starting level');
  assert.ok(end.heapUsed - base.heapUsed < HEAP_TOLERANCE, `JS heap grew ${mib(end.heapUsed - base.heapUsed)}`);
  // Under `npm run test:asan` the ASan allocator's quarantine holds freed memory on purpose.
  if (!/libasan/.test(process.env.LD_PRELOAD ?? '')) assert.ok(end.rss - base.rss < RSS_TOLERANCE, `RSS grew ${mib(end.rss - base.rss)}`);
}

for (const transport of transports()) {
  describe(`leaks [${transport}]`, () => {
    test('1000 start/stop cycles linked to an agent, a message each', async (t) => {
      const sim = await startSim(t, { keepFrames: false });
      const r = await runChild(t, { socketPath: sim.socketPath, transport, mode: 'cycles', cycles: 1000 });
      assertBack(t, r, '1000 cycles with an agent');
      // Delivery at stop() is test/reliability-stop.test.mjs's business; here, one connection per cycle.
      await waitFor(() => sim.counts.connections === 1300, 'a connection per cycle');
    });

    test('1000 start/stop cycles with no agent', async (t) => {
      const r = await runChild(t, { socketPath: tempSocket(t), transport, mode: 'noagent', cycles: 1000 });
      assertBack(t, r, '1000 cycles without an agent');
    });

    test('stopped and dropped instances are garbage-collected', async (t) => {
      const sim = await startSim(t, { keepFrames: false });
      const r = await runChild(t, { socketPath: sim.socketPath, transport, mode: 'gc', cycles: 50 });
      t.diagnostic(`${r.collected} of 50 collected`);
      // FinalizationRegistry callbacks are not promised for every object; most must come.
      assert.ok(r.collected >= 45, `${r.collected} of 50 stopped SDKs were garbage-collected`);
    });

    test('200 instances created, linked and stopped together, three rounds after two', async (t) => {
      const sim = await startSim(t, { keepFrames: false });
      const r = await runChild(t, { socketPath: sim.socketPath, transport, mode: 'instances', cycles: 200 });
      assertBack(t, r, '3 rounds of 200 instances');
      await waitFor(() => sim.counts.hellos === 1000, 'every instance said hello');
    });

    test('20 worker threads terminated mid-stream', async (t) => {
      const sim = await startSim(t, { keepFrames: false });
      const r = await runChild(t, { socketPath: sim.socketPath, transport, mode: 'workers', cycles: 20 });
      assertBack(t, r, '20 workers terminated mid-stream');
      await waitFor(() => sim.counts.connections === 23, 'a connection per worker');
      assert.ok(sim.counts.telemetry > 0);
    });

    test('60 workers terminated while sending never take the process down', async (t) => {
      const sim = await startSim(t, { keepFrames: false });
      // runChild fails if the process dies (a C++ exception thrown while the worker's environment stops).
      await runChild(t, { socketPath: sim.socketPath, transport, mode: 'workers', cycles: 60 });
      await waitFor(() => sim.counts.connections === 63, 'a connection per worker');
    });
  });
}
