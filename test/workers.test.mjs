// Command handlers in worker threads: params in, return values and context.send() out, errors and
// timeouts as error frames, ordering, the queue bound, stop() with work in flight, and no threads at
// all for an application that never subscribes a worker handler.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, promises as fsp } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sdk, transports, startSim, makeSDK, startAndWait, waitFor, nextEvent, DEADLINE_MS, SLOWDOWN } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { workerHandler } = sdk;
const CJS = require.resolve('./fixtures/worker-handlers.js');
const ESM_URL = new URL('./fixtures/worker-handlers.mjs', import.meta.url);
const DIST = fileURLToPath(new URL('../dist/', import.meta.url));

const threadCount = () => readdirSync('/proc/self/task').length;
/** Thread names, for a failure message that says which thread is left. */
const threadNames = () =>
  readdirSync('/proc/self/task')
    .map((id) => {
      try {
        return readFileSync(`/proc/self/task/${id}/comm`, 'utf8').trim();
      } catch {
        return '?';
      }
    })
    .sort()
    .join(', ');
const payloads = (sim) => sim.telemetry.map((r) => r.payload);

/** Every command line in one write, so that they reach the SDK in one read. */
function pushAll(sim, commands) {
  sim.sendRaw(commands.map(([type, params]) => JSON.stringify({ data: { [type]: params } }) + '\n').join(''));
}

for (const transport of transports()) {
  describe(`worker handlers [${transport}]`, () => {
    it('calls the export with the params; the return value reaches the agent, with and without a channel', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { workers: { maxThreads: 2 } });
      client.subscribe('echo', workerHandler(CJS, 'echo'));
      client.subscribe('echoChannel', { module: CJS, export: 'echo', channel: 'results' });
      client.subscribe('resize', workerHandler(ESM_URL));
      client.subscribe('named', { module: ESM_URL.href, export: 'named' });
      await startAndWait(client);
      const params = { s: 'quote " nl \n \u00e9\u6f22\u{1F600}', n: -1.5e-7, big: 9007199254740991, arr: [1, null, { d: [] }], o: {} };
      sim.pushCommand('echo', params);
      await waitFor(() => sim.telemetry.length === 1, 'the echo result');
      sim.pushCommand('echoChannel', { x: 1 });
      await waitFor(() => sim.telemetry.length === 2, 'the channel result');
      sim.pushCommand('resize', { width: 640 });
      await waitFor(() => sim.telemetry.length === 4, 'the ESM progress and result');
      sim.pushCommand('named', []);
      await waitFor(() => sim.telemetry.length === 5, 'the named ESM result');

      const [echo, echoChannel, progress, resized, named] = sim.telemetry;
      assert.deepEqual(echo.payload.params, params);
      assert.equal(echo.payload.cmdType, 'echo');
      assert.notEqual(echo.payload.threadId, 0, 'ran in a worker thread');
      assert.ok(!('channel' in echo));
      assert.deepEqual(echoChannel.payload.params, { x: 1 });
      assert.equal(echoChannel.channel, 'results');
      assert.deepEqual(progress.payload, { progress: 0.5, of: 'resize' });
      assert.equal(resized.payload.esm, true);
      assert.equal(resized.payload.width, 320);
      assert.deepEqual(named.payload, { named: true, params: [] });
      assert.equal(sim.errors.length, 0);
      const stats = client.stats();
      assert.equal(stats.commandsDispatched, 4);
      assert.equal(stats.accepted, 5);
    });

    it('delivers context.send() messages in order, on their channel, before the return value', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      client.subscribe('many', workerHandler(CJS, 'sendMany'));
      client.subscribe('spread', workerHandler(CJS, 'sendAsync'));
      await startAndWait(client);
      // 600 crosses the worker's batch size twice; the async one posts many small batches.
      sim.pushCommand('many', { n: 600, channel: 'bulk' });
      await waitFor(() => sim.telemetry.length === 601, '600 messages and the result');
      sim.pushCommand('spread', { n: 95 });
      await waitFor(() => sim.telemetry.length === 601 + 96, '95 messages and the result');
      const many = sim.telemetry.slice(0, 601);
      assert.deepEqual(
        many.slice(0, 600).map((r) => r.payload.i),
        Array.from({ length: 600 }, (_, i) => i),
      );
      assert.ok(many.slice(0, 600).every((r) => r.channel === 'bulk'));
      assert.deepEqual(many[600].payload, { sent: 600 });
      assert.ok(!('channel' in many[600]));
      const spread = sim.telemetry.slice(601);
      assert.deepEqual(
        spread.slice(0, 95).map((r) => r.payload.i),
        Array.from({ length: 95 }, (_, i) => i),
      );
      assert.deepEqual(spread[95].payload, { sent: 95 });
      assert.equal(client.stats().accepted, 601 + 96);
    });

    it('context.send() checks its arguments in the worker as send() does; non-object return values send nothing', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      client.subscribe('badSend', workerHandler(CJS, 'badSend'));
      client.subscribe('number', workerHandler(CJS, 'notAnObject'));
      client.subscribe('echo', workerHandler(CJS, 'echo'));
      await startAndWait(client);
      pushAll(sim, [['badSend', {}], ['number', {}], ['echo', { last: true }]]);
      await waitFor(() => sim.telemetry.length === 2, 'two results');
      const got = payloads(sim);
      assert.equal(got.length, 2);
      const bad = got.find((p) => 'name' in p);
      assert.equal(bad.name, 'TypeError');
      assert.match(bad.message, /\bmsg\b/);
      assert.ok(got.some((p) => p.params?.last === true));
      assert.equal(sim.errors.length, 0);
    });

    it('reports a throw, a rejection and an unserialisable result as the error frame', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      const reported = [];
      client.on('callbackError', (info) => reported.push(info));
      client.subscribe('throws', workerHandler(CJS, 'throws'));
      client.subscribe('rejects', workerHandler(CJS, 'rejects'));
      client.subscribe('string', workerHandler(CJS, 'throwsString'));
      client.subscribe('bad', workerHandler(CJS, 'badResult'));
      client.subscribe('missing', workerHandler(CJS, 'noSuchExport'));
      await startAndWait(client);
      for (const type of ['throws', 'rejects', 'string', 'bad', 'missing']) {
        const before = sim.errors.length;
        sim.pushCommand(type, {});
        await waitFor(() => sim.errors.length === before + 1, `the error frame for ${type}`);
      }
      const errors = sim.errors.map((e) => ({ type: e.type, msg: e.msg }));
      assert.deepEqual(errors.slice(0, 3), [
        { type: 'RangeError', msg: 'size out of range' },
        { type: 'ResizeError', msg: 'cannot resize a GIF' },
        { type: 'string', msg: 'plain string' },
      ]);
      assert.equal(errors[3].type, 'ValueError');
      assert.equal(errors[4].type, 'TypeError');
      assert.match(errors[4].msg, /noSuchExport/);
      assert.deepEqual(
        reported.map((r) => r.source),
        ['command:throws', 'command:rejects', 'command:string', 'command:bad', 'command:missing'],
      );
      assert.equal(sim.telemetry.length, 0);
      assert.equal(client.stats().callbackErrors, 5);
    });

    it('times out a handler with a TimeoutError frame: the signal fires; one that ignores it loses its thread', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath, {
        // Scaled: the limit also covers loading the module in a fresh thread.
        workers: { minThreads: 1, maxThreads: 1, taskTimeoutMs: 200 * SLOWDOWN, abortGraceMs: 200 },
      });
      client.subscribe('wait', workerHandler(CJS, 'waitForAbort'));
      client.subscribe('spin', workerHandler(CJS, 'spin'));
      client.subscribe('echo', workerHandler(CJS, 'echo'));
      await startAndWait(client);

      sim.pushCommand('wait', { id: 1 });
      await waitFor(() => sim.errors.length === 1, 'the timeout of the cooperative handler');
      assert.deepEqual({ type: sim.errors[0].type, msg: sim.errors[0].msg }, { type: 'TimeoutError', msg: `command 'wait' timed out after ${200 * SLOWDOWN} ms` });

      sim.pushCommand('spin', { id: 2, ms: 60_000 });
      await waitFor(() => sim.errors.length === 2, 'the timeout of the spinning handler');
      assert.equal(sim.errors[1].type, 'TimeoutError');
      // The only thread was terminated after the grace period; the next command gets a fresh one.
      sim.pushCommand('echo', { after: 'spin' });
      await waitFor(() => payloads(sim).some((p) => p.params?.after === 'spin'), 'a command after the terminated thread');
      assert.equal(sim.errors.length, 2, 'the termination itself is not reported again');
      assert.deepEqual(payloads(sim).filter((p) => 'started' in p), [{ started: 1 }, { started: 2 }]);
    });

    it('ordered: runs one command of the type at a time, in arrival order, while others run concurrently', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { workers: { minThreads: 3, maxThreads: 3 } });
      client.subscribe('inOrder', workerHandler(CJS, 'nap', { ordered: true }));
      client.subscribe('free', workerHandler(CJS, 'nap'));
      await startAndWait(client);
      // Every thread booted and the module loaded, so that a slow start cannot serialise the run.
      pushAll(sim, [0, 1, 2].map((seq) => ['free', { seq: 1000 + seq, ms: 100 }]));
      await waitFor(() => sim.telemetry.length === 3, 'the warm-up commands');
      sim.clearRecords();
      // Decreasing durations: concurrent runs would finish in reverse order.
      const n = 6;
      const commands = [];
      for (let seq = 0; seq < n; seq++) {
        commands.push(['inOrder', { seq, ms: 60 - seq * 10 }]);
        commands.push(['free', { seq: 100 + seq, ms: 60 - seq * 10 }]);
      }
      pushAll(sim, commands);
      await waitFor(() => sim.telemetry.length === 2 * n, 'every result');
      const ordered = payloads(sim).filter((p) => p.seq < 100);
      assert.deepEqual(
        ordered.map((p) => p.seq),
        Array.from({ length: n }, (_, i) => i),
      );
      for (let i = 1; i < n; i++) {
        assert.ok(ordered[i].start >= ordered[i - 1].end, `ordered command ${i} started before ${i - 1} ended`);
      }
      const free = payloads(sim).filter((p) => p.seq >= 100);
      const overlap = free.some((a) => free.some((b) => a !== b && a.start < b.end && b.start < a.end));
      assert.ok(overlap, 'unordered commands of one type ran concurrently');
    });

    it('drops commands past the queue bound, counts them and emits commandDropped', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { workers: { minThreads: 1, maxThreads: 1, maxQueue: 2 } });
      const dropped = [];
      client.on('commandDropped', (info) => dropped.push(info));
      client.subscribe('nap', workerHandler(CJS, 'nap'));
      client.subscribe('napOrdered', workerHandler(CJS, 'nap', { ordered: true }));
      await startAndWait(client);
      // One runs on the only thread, two wait in the pool's queue, three are dropped.
      pushAll(sim, Array.from({ length: 6 }, (_, seq) => ['nap', { seq, ms: 300 }]));
      await waitFor(() => sim.telemetry.length === 3, 'the three commands that fitted');
      assert.deepEqual(
        payloads(sim).map((p) => p.seq),
        [0, 1, 2],
      );
      assert.deepEqual(dropped, Array.from({ length: 3 }, () => ({ cmdType: 'nap', reason: 'queueFull' })));
      // Ordered: one running plus two in its own backlog; the rest dropped.
      sim.clearRecords();
      pushAll(sim, Array.from({ length: 5 }, (_, seq) => ['napOrdered', { seq, ms: 50 }]));
      await waitFor(() => sim.telemetry.length === 3, 'the three ordered commands that fitted');
      assert.deepEqual(
        payloads(sim).map((p) => p.seq),
        [0, 1, 2],
      );
      assert.equal(dropped.filter((d) => d.cmdType === 'napOrdered' && d.reason === 'queueFull').length, 2);
      assert.equal(client.stats().commandsDropped, 5);
      assert.equal(client.stats().commandsDispatched, 11);
    });

    it('stop() aborts handlers in flight, terminates those that ignore it, and leaves no thread behind', async (t) => {
      const sim = await startSim(t);
      await fsp.stat('.'); // the libuv threadpool counts in the baseline
      const baseline = threadCount();
      const baselineNames = threadNames();
      const client = makeSDK(t, transport, sim.socketPath, {
        workers: { minThreads: 2, maxThreads: 2, abortGraceMs: 300 },
        stopTimeoutMs: 5000,
      });
      const dropped = [];
      client.on('commandDropped', (info) => dropped.push(info));
      client.subscribe('wait', workerHandler(CJS, 'waitForAbort'));
      client.subscribe('spin', workerHandler(CJS, 'spin'));
      client.subscribe('later', workerHandler(CJS, 'nap', { ordered: true }));
      await startAndWait(client);
      await waitFor(() => client.stats().commandsDispatched === 0 && threadCount() >= baseline + 2, 'two worker threads');
      pushAll(sim, [
        ['wait', { id: 'w' }],
        ['spin', { id: 's', ms: 60_000 }],
      ]);
      await waitFor(() => sim.telemetry.length === 2, 'both handlers running');
      // An ordered command behind one that cannot finish before the stop: dropped, never run.
      const first = nextEvent(sim, 'telemetry');
      pushAll(sim, [
        ['later', { seq: 1, ms: 60_000 }],
        ['later', { seq: 2, ms: 1 }],
      ]);
      await waitFor(() => client.stats().commandsDispatched === 4, 'the ordered commands dispatched');
      void first.catch(() => {});
      await client.stop();
      // The cooperative handler rethrew its AbortError; the spinning one and the napping one were cut off.
      const types = sim.errors.map((e) => e.type).sort();
      assert.ok(types.includes('AbortError'), `an AbortError frame, got ${types.join(', ')}`);
      assert.ok(sim.errors.length >= 2 && sim.errors.length <= 3, `error frames: ${types.join(', ')}`);
      assert.deepEqual(dropped, [{ cmdType: 'later', reason: 'stop' }]);
      await waitFor(() => threadCount() === baseline, 'the thread count back to the baseline').catch((err) => {
        throw new Error(`${err.message}: threads were [${baselineNames}], now [${threadNames()}]`);
      });
      // A restarted SDK gets a new pool.
      sim.clearRecords();
      client.subscribe('echo', workerHandler(CJS, 'echo'));
      await startAndWait(client);
      sim.pushCommand('echo', { again: true });
      await waitFor(() => payloads(sim).some((p) => p.params?.again), 'a command after the restart');
      await client.stop();
      await waitFor(() => threadCount() === baseline, 'thread count back to the baseline after the second stop');
    });

    it('stop() with handlers that ignore the abort, 10 times over: every thread is gone after each stop()', async (t) => {
      const sim = await startSim(t);
      await fsp.stat('.');
      const baseline = threadCount();
      const baselineNames = threadNames();
      const client = makeSDK(t, transport, sim.socketPath, {
        workers: { minThreads: 2, maxThreads: 2, abortGraceMs: 20 },
        stopTimeoutMs: 5000,
      });
      client.subscribe('spin', workerHandler(CJS, 'spin'));
      for (let round = 0; round < 10; round++) {
        sim.clearRecords();
        await startAndWait(client);
        pushAll(sim, [
          ['spin', { id: 'a', ms: 60_000 }],
          ['spin', { id: 'b', ms: 60_000 }],
        ]);
        await waitFor(() => sim.telemetry.length === 2, `both handlers spinning (round ${round})`);
        await client.stop();
        // A terminated thread's exit reported after the pool was destroyed made piscina start
        // minThreads new ones, which nothing would ever stop.
        await waitFor(() => threadCount() === baseline, `the thread count back to the baseline (round ${round})`).catch((err) => {
          throw new Error(`${err.message}: threads were [${baselineNames}], now [${threadNames()}]`);
        });
      }
    });

    it('an application without worker handlers never loads piscina nor starts a thread', async (t) => {
      const sim = await startSim(t);
      const script = `
        const fs = require('node:fs');
        const { IottlySDK, workerHandler } = require(${JSON.stringify(DIST + 'index.js')});
        const threads = () => fs.readdirSync('/proc/self/task').length;
        const loaded = () => Object.keys(require.cache).filter((k) => /[\\\\/]piscina[\\\\/]|[\\\\/]workers\\.js$/.test(k)).length;
        (async () => {
          await fs.promises.stat('.');
          const client = new IottlySDK('plain-app', { socketPath: ${JSON.stringify(sim.socketPath)}, transport: ${JSON.stringify(transport)} });
          const seen = [];
          client.subscribe('cmd', (p) => seen.push(p));
          client.start();
          const deadline = Date.now() + ${DEADLINE_MS};
          while (seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
          const before = { threads: threads(), loaded: loaded(), handled: seen.length };
          client.subscribe('heavy', workerHandler(${JSON.stringify(CJS)}, 'echo'));
          while (threads() === before.threads && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
          const after = { threads: threads(), loaded: loaded() };
          await client.stop();
          process.stdout.write(JSON.stringify({ before, after }));
        })();
      `;
      const child = execFile(process.execPath, ['-e', script], { timeout: DEADLINE_MS * 2 });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      await waitFor(() => sim.clients.length === 1 && sim.clients[0].name === 'plain-app', 'the child to connect');
      sim.pushCommand('cmd', { hi: 1 });
      const [code] = await nextEvent(child, 'exit', DEADLINE_MS * 2);
      assert.equal(code, 0, err);
      const { before, after } = JSON.parse(out);
      assert.equal(before.handled, 1, 'the main-thread callback ran');
      assert.equal(before.loaded, 0, 'piscina and the pool module were never loaded');
      assert.ok(after.loaded > 0, 'a worker handler loads them');
      assert.ok(after.threads > before.threads, 'and starts a thread');
    });

    it('rejects bad worker handler descriptions at subscribe time', (t) => {
      const client = makeSDK(t, transport, '/nonexistent/agent.sock');
      assert.throws(() => client.subscribe('x', workerHandler('relative/path.js')), /absolute path or a file: URL/);
      assert.throws(() => client.subscribe('x', { module: '/no/such/module.js' }), /does not exist/);
      assert.throws(() => client.subscribe('x', { module: CJS, export: '' }), /export must be a non-empty string/);
      assert.throws(() => client.subscribe('x', { module: CJS, ordered: 'yes' }), /ordered must be a boolean/);
      assert.throws(() => client.subscribe('x', { module: CJS, channel: 7 }), /channel must be a string/);
      assert.throws(() => client.subscribe('x', { mod: CJS }), /callback must be a function or a worker handler/);
      assert.throws(() => new sdk.IottlySDK('x', { workers: { maxThreads: 0 } }), /options\.workers\.maxThreads/);
      assert.throws(() => new sdk.IottlySDK('x', { workers: { minThreads: 3, maxThreads: 2 } }), RangeError);
      assert.equal(client.stats().commandsDropped, 0);
      assert.equal(typeof pathToFileURL, 'function');
    });
  });
}
