// Native-transport behaviour that the shared suite cannot see: worker threads, teardown of threads
// and fds, delivery while the JS main thread is blocked, and the addon's loading knobs.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { sdk, tempSocket, startSim, makeSDK, startAndWait, waitFor, DEADLINE_MS, SLOWDOWN } from './helpers.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const WORKER = here('./fixtures/native-worker.mjs');
const TIMESTAMP_AGENT = here('./fixtures/timestamp-agent.mjs');
const DIST = here('../dist/index.js');
const addon = createRequire(import.meta.url)('../dist/transport/addon.js');
/**
 * The addon loadBinding() would pick, as far as Node can load it (a build for another CPU, as on the
 * emulated ARM runs, is passed over): its path and exports, or null when there is none.
 */
function builtAddon() {
  const candidates = addon.addonCandidates();
  for (const file of process.env.IOTTLY_SDK_NATIVE_PATH ? candidates.slice(0, 1) : candidates) {
    if (!existsSync(file)) continue;
    try {
      return { file, binding: createRequire(import.meta.url)(file) };
    } catch {
      // not loadable here: try the next one, as loadBinding() does
    }
  }
  return null;
}
const BUILT = builtAddon();

const fdCount = () => readdirSync('/proc/self/fd').length;
const threadCount = () => readdirSync('/proc/self/task').length;

function exited(worker) {
  return new Promise((resolve, reject) => {
    worker.once('exit', resolve);
    worker.once('error', reject);
  });
}

function runNode(args, env = {}) {
  return spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: DEADLINE_MS });
}

describe('native transport', { skip: !sdk.nativeAvailable() && 'the native addon is not built' }, () => {
  test('SDKs in several worker threads at once each deliver everything, in order', async (t) => {
    const sim = await startSim(t, { keepFrames: true });
    const count = 2000;
    const plan = [
      ['w0-a', 'w0-b'],
      ['w1-a', 'w1-b'],
      ['w2-a'],
    ];
    // stop() may take longer than its default 5 s to flush everything on a slow (emulated) CPU.
    const options = { stopTimeoutMs: DEADLINE_MS };
    const workers = plan.map((names) => new Worker(WORKER, { workerData: { socketPath: sim.socketPath, names, count, mode: 'send', options } }));
    const exits = workers.map(exited);
    const results = await Promise.all(
      workers.map(
        (w) =>
          new Promise((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    await Promise.all(exits);
    for (const { stats } of results) {
      for (const s of stats) {
        assert.equal(s.transport, 'native');
        assert.equal(s.written, count, `${s.name} wrote everything`);
      }
    }
    const names = plan.flat();
    await waitFor(() => sim.counts.telemetry === names.length * count && sim.counts.goodbyes === names.length, 'all telemetry and goodbyes');
    for (const name of names) {
      const seqs = sim.telemetry.filter((r) => r.name === name).map((r) => r.payload.seq);
      assert.deepEqual(seqs, [...Array(count).keys()], `${name}: every message once, in order`);
    }
  });

  test('a worker terminated mid-stream closes its connection and leaves no thread or fd behind', async (t) => {
    const sim = await startSim(t, { keepFrames: false });
    // Warm up whatever Node starts lazily for a worker, so the baseline is fair.
    const warm = new Worker(WORKER, { workerData: {} });
    await exited(warm);
    const fds = fdCount();
    const threads = threadCount();

    const worker = new Worker(WORKER, { workerData: { socketPath: sim.socketPath, names: ['doomed'], mode: 'stream' } });
    await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await waitFor(() => sim.counts.telemetry > 5000, 'the worker streaming');
    const disconnected = new Promise((resolve) => sim.once('disconnect', resolve));
    await worker.terminate();
    await disconnected;
    await waitFor(() => fdCount() <= fds && threadCount() <= threads, `fds back to ${fds} and threads back to ${threads}`);
  });

  test('200 start/stop cycles leave no fd or thread behind', async (t) => {
    const sim = await startSim(t, { keepFrames: false });
    const client = makeSDK(t, 'native', sim.socketPath, { handshakeTimeoutMs: 50 });
    await startAndWait(client);
    await client.stop();
    // The simulator lives in this process too: count once its side of the connection is gone.
    await waitFor(() => sim.clients.length === 0, 'the warm-up connection closed at the agent');
    const fds = fdCount();
    const threads = threadCount();
    for (let i = 0; i < 200; i++) {
      client.start();
      await waitFor(() => client.linked, `link #${i}`);
      client.send({ cycle: i });
      await client.stop();
    }
    await waitFor(() => sim.clients.length === 0, 'the last connection closed at the agent');
    // The last stop() joined its thread; the kernel may count it a moment longer (see checkStopped in simtest).
    await waitFor(() => threadCount() <= threads, `threads back to ${threads} after 200 cycles`);
    assert.ok(fdCount() <= fds, `fds after 200 cycles: ${fdCount()}, before: ${fds}`);
    const delivered = () => ({ telemetry: sim.counts.telemetry, goodbyes: sim.counts.goodbyes });
    await waitFor(() => delivered().telemetry === 200 && delivered().goodbyes === 201, 'one message and one goodbye per cycle').catch(
      () => assert.deepEqual({ ...delivered(), stats: client.stats() }, { telemetry: 200, goodbyes: 201 }),
    );
  });

  test('messages keep reaching the agent while the JS main thread is blocked', async (t) => {
    const socketPath = tempSocket(t);
    const agent = fork(TIMESTAMP_AGENT, [socketPath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    t.after(() => agent.connected && agent.send('exit'));
    const ask = (msg) =>
      new Promise((resolve) => {
        agent.once('message', resolve);
        if (msg) agent.send(msg);
      });
    await ask(null);
    const client = makeSDK(t, 'native', socketPath);
    await startAndWait(client);

    const block = (ms) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        // user code hogging the main thread
      }
    };
    // A lone message followed at once by a block: handed to the I/O thread immediately.
    const loneAt = Date.now();
    // The block is long enough for the I/O thread to act in, also on an emulated CPU.
    const blockMs = 200 * SLOWDOWN;
    client.send({ seq: -1 });
    block(blockMs);
    const loneEnd = Date.now();

    // A burst of ~220 KB, then a block in the same synchronous run: all but the last staging batch
    // (under 64 KiB) is already with the I/O thread when the block starts.
    const N = 3000;
    const pad = 'x'.repeat(40);
    for (let i = 0; i < N; i++) client.send({ seq: i, pad });
    const blockStart = Date.now();
    block(blockMs);
    const blockEnd = Date.now();

    await waitFor(async () => (await ask('report')).counts.telemetry === N + 1, 'every message at the agent');
    const { arrivals } = await ask('report');
    const lone = arrivals.find(([seq]) => seq === -1);
    assert.ok(lone[1] >= loneAt && lone[1] < loneEnd, `the lone message arrived during its block (${lone[1] - loneAt} ms in)`);
    const byEnd = arrivals.filter(([seq, at]) => seq >= 0 && at < blockEnd).length;
    const during = arrivals.filter(([seq, at]) => seq >= 0 && at >= blockStart && at < blockEnd).length;
    assert.ok(during > 0, 'frames kept arriving while the main thread was blocked');
    const frameBytes = Buffer.byteLength(`{"data":{"sdkclient":{"name":"test-app"},"payload":{"seq":1000,"pad":"${pad}"}}}\n`);
    const stagedAtMost = Math.ceil((64 * 1024) / frameBytes);
    assert.ok(
      byEnd >= N - stagedAtMost,
      `${byEnd} of ${N} arrived before the 200 ms block ended, ${during} during it (at most ${stagedAtMost} may wait in JS)`,
    );
  });

  test('an exception thrown by a listener of a native event is an ordinary uncaught exception', () => {
    const code = `
      const { IottlySDK } = require(${JSON.stringify(DIST)});
      process.on('uncaughtException', (err) => { console.log('caught ' + err.message); process.exit(0); });
      const client = new IottlySDK('x', { socketPath: '/nonexistent/agent.sock', transport: 'native' });
      client.on('connectError', () => { throw new Error('listener failed'); });
      client.start();
    `;
    const r = runNode(['-e', code]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /caught listener failed/);
  });

  test('IOTTLY_SDK_NATIVE_PATH to a missing file: auto falls back to js, transport "native" names the build command', () => {
    const code = `
      const s = require(${JSON.stringify(DIST)});
      let err = null;
      try { new s.IottlySDK('x', { socketPath: '/tmp/none.sock', transport: 'native' }); } catch (e) { err = e; }
      const auto = new s.IottlySDK('x', { socketPath: '/tmp/none.sock' });
      console.log(JSON.stringify({ available: s.nativeAvailable(), auto: auto.transport, name: err && err.name, msg: err && err.message }));
    `;
    const r = runNode(['-e', code], { IOTTLY_SDK_NATIVE_PATH: '/nonexistent/iottly_native.node' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.available, false);
    assert.equal(out.auto, 'js');
    assert.equal(out.name, 'TransportUnavailable');
    assert.match(out.msg, /npm rebuild iottly-sdk/);
  });

  test('IOTTLY_SDK_TRANSPORT=js forces the JS transport even though the addon loads', () => {
    const code = `
      const s = require(${JSON.stringify(DIST)});
      console.log(JSON.stringify({ available: s.nativeAvailable(), t: new s.IottlySDK('x', '/tmp/none.sock').transport }));
    `;
    const r = runNode(['-e', code], { IOTTLY_SDK_TRANSPORT: 'js' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { available: true, t: 'js' });
  });
});

test('the built addon exports its event codes and counter fields, equal to the TypeScript tables', { skip: !BUILT && 'no addon is built' }, () => {
  // Required directly, not through loadBinding(): an addon whose tables differ does not load, and
  // the native tests above would then be skipped rather than fail.
  const { file, binding } = BUILT;
  assert.equal(binding.abiVersion, addon.NATIVE_ABI_VERSION, `${file} is of another interface version: rebuild it`);
  assert.deepEqual({ ...binding.events }, { ...addon.NativeEvent });
  assert.ok(Array.isArray(binding.counterFields), 'counterFields is an array');
  assert.deepEqual([...binding.counterFields].sort(), [...addon.NATIVE_COUNTER_FIELDS].sort());
  assert.ok(Object.isFrozen(binding.events) && Object.isFrozen(binding.counterFields), 'the tables are frozen');
  addon.checkNativeSurface(binding);
  // counters(out) fills exactly one slot per listed field, and says how many it needs.
  const handle = new binding.Transport(
    { socketPath: '/nonexistent/s.sock', reconnectIntervalMs: 100, maxBufferedMsgs: 10, maxQueueBytes: 1024, highWaterMark: 512, maxFrameBytes: 1024 },
    new Float64Array(3),
    () => {},
  );
  const out = new Float64Array(binding.counterFields.length + 1).fill(-1);
  handle.counters(out);
  assert.deepEqual([...out], [...Array(binding.counterFields.length).fill(0), -1]);
  assert.throws(() => handle.counters(new Float64Array(binding.counterFields.length - 1)), {
    message: `out must be a Float64Array of ${binding.counterFields.length} elements`,
  });
});
