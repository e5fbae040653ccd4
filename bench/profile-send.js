'use strict';
// Where the CPU of one send() goes in a burst: `node bench/profile-send.js [native|js] [messages]`
// (after `npm run build`). One synchronous loop of send() calls with the burst case's ~130 B
// payload into the agent stand-in, after a warm-up burst, under V8's sampling profiler (20 µs).
// The main thread's CPU (from /proc, to the nanosecond) is split in proportion to the profile's
// samples by what the sampled function does; the rest of the process's CPU is the other threads
// (the native transport's I/O thread, and V8's helpers).

const fs = require('node:fs');
const inspector = require('node:inspector');
const { startAgent } = require('./lib/agent');
const u = require('./lib/util');

const transport = process.argv[2] ?? 'native';
const N = Number(process.argv[3] ?? 400_000);
const OPTIONS = { maxQueueBytes: 512 * 1024 * 1024 };

/** What a sampled function does, from its name and file. */
function category(frame) {
  const file = frame.url.split('/').pop();
  const fn = frame.functionName;
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(idle)' || fn === '(program)' || fn === '(root)') return 'other';
  // The addon's methods are named after its class, with no file and no line.
  if (fn === 'NativeTransport' && frame.lineNumber < 0) return 'hand-off to the addon (copy, queue, wake)';
  // Shape functions are compiled with new Function (no file); util.types checks are C++ (no line);
  // codec.js calls JSON.stringify.
  if (file === 'shape-serializer.js' || file === 'byte-writer.js' || (file === '' && fn !== '')) return 'serialise';
  if (file === 'codec.js' && fn !== 'isPlainObject') return 'serialise';
  // Before #13 the staged string was measured with Buffer.byteLength on its way to the addon.
  if ((file === 'native.js' && /^(push|flushStaged)$/.test(fn)) || fn === 'byteLength') return 'hand-off to the addon (copy, queue, wake)';
  if (file === 'js.js' && /^(writeDirect|probedWrite|writeBatch|flush|writeQueued)$/.test(fn)) return 'socket writes';
  if (file === 'sdk.js' || file === 'native.js' || file === 'js.js' || file === 'frame-queue.js' || fn === 'isPlainObject') {
    return 'SDK bookkeeping (checks, counters, staging)';
  }
  if (/^node:|^internal\//.test(frame.url) || /streams|net\.js|stream_base/.test(frame.url)) return 'Node streams and sockets';
  return 'other';
}

function threadCpuNs(tid) {
  return Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
}

function post(session, method, params) {
  return new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
}

async function burst(agent, payload, n) {
  await agent.reset();
  const sdk = await u.linkedSDK(transport, agent.socketPath, OPTIONS);
  return { sdk, run: () => { for (let i = 0; i < n; i++) { payload.seq = i; sdk.send(payload); } } };
}

(async () => {
  const agent = await startAgent();
  const payload = u.makePayload('small');
  try {
    const warm = await burst(agent, payload, N / 4);
    warm.run();
    await agent.expect(N / 4);
    await warm.sdk.stop();

    const { sdk, run } = await burst(agent, payload, N);
    const session = new inspector.Session();
    session.connect();
    await post(session, 'Profiler.enable');
    await post(session, 'Profiler.setSamplingInterval', { interval: 20 });
    if (global.gc) global.gc();
    await post(session, 'Profiler.start');
    const main0 = threadCpuNs(process.pid);
    const proc0 = process.cpuUsage();
    const t0 = u.now();
    run();
    const loopNs = u.now() - t0;
    await agent.expect(N);
    const mainNs = threadCpuNs(process.pid) - main0;
    const proc = process.cpuUsage(proc0);
    const { profile } = await post(session, 'Profiler.stop');
    session.disconnect();
    await sdk.stop();

    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const weight = new Map();
    let total = 0;
    for (let i = 0; i < profile.samples.length; i++) {
      const frame = byId.get(profile.samples[i]).callFrame;
      if (frame.functionName === '(idle)') continue;
      const c = category(frame);
      weight.set(c, (weight.get(c) ?? 0) + profile.timeDeltas[i]);
      total += profile.timeDeltas[i];
    }
    const procNs = (proc.user + proc.system) * 1000;
    console.log(`${transport} transport, ${N} messages of ${Buffer.byteLength(u.frameOf(payload))} B in one loop; Node ${process.version}`);
    console.log(`send loop ${(loopNs / N).toFixed(0)} ns/msg; main thread CPU ${(mainNs / N).toFixed(0)} ns/msg, of which:`);
    if (process.env.PROFILE_TOP) {
      const self = new Map();
      for (let i = 0; i < profile.samples.length; i++) {
        const f = byId.get(profile.samples[i]).callFrame;
        const k = `${f.functionName} ${f.url.split('/').pop()}:${f.lineNumber}`;
        self.set(k, (self.get(k) ?? 0) + profile.timeDeltas[i]);
      }
      for (const [k, w] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`    ${(w / 1000).toFixed(1).padStart(7)} ms  ${k}`);
    }
    for (const [c, w] of [...weight].sort((a, b) => b[1] - a[1])) {
      console.log(`  ${c.padEnd(44)} ${((mainNs * (w / total)) / N).toFixed(0).padStart(5)} ns  (${((100 * w) / total).toFixed(0)}% of samples)`);
    }
    console.log(`other threads (I/O thread, V8 helpers) ${((procNs - mainNs) / N).toFixed(0)} ns/msg; process CPU ${(procNs / N).toFixed(0)} ns/msg`);
  } finally {
    await agent.stop();
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
