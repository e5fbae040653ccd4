'use strict';
// How should telemetry cross from JavaScript into the native queue? Measures, on a linked native
// transport writing to a sink process that reads and discards:
//   per-message  one Node-API call per frame                      handle.push(frame)
//   string-batch frames joined into a string, one call per 64 KiB  handle.push(joined)
//   buffer-batch frames written into a 64 KiB Buffer, one call per fill
// "hand-off" is main-thread time spent accepting N frames; "delivered" is until the sink has them all.
// Usage: node bench/native-handoff.js [frames=1000000] [trials=3]
const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const N = Number(process.argv[2] || 1_000_000);
const TRIALS = Number(process.argv[3] || 3);
const STAGE = 64 * 1024;

if (process.argv[2] === '--sink') {
  sink(process.argv[3]);
  return;
}

function sink(socketPath) {
  const net = require('node:net');
  let bytes = 0;
  let target = Infinity;
  const server = net.createServer((s) => {
    s.on('data', (c) => {
      bytes += c.length;
      if (bytes >= target) {
        process.send({ done: bytes });
        target = Infinity;
      }
    });
    s.on('error', () => {});
  });
  server.listen(socketPath, () => process.send({ listening: true }));
  process.on('message', (m) => {
    if (m.expect !== undefined) {
      target = m.expect;
      if (bytes >= target) process.send({ done: bytes });
    }
    if (m.reset) bytes = 0;
    if (m.exit) server.close(() => process.exit(0));
  });
}

function frame(i) {
  // ~120 bytes, like a small telemetry message from IottlySDK.send().
  return `{"data":{"sdkclient":{"name":"bench"},"payload":{"seq":${i},"temp":21.5,"unit":"C","ok":true,"tag":"abcdefghij"}}}\n`;
}

const methods = {
  // What every method pays anyway: building the frames and measuring them; nothing is handed over
  // except one final call, so "delivered" here is meaningless and left out of the table.
  baseline(handle) {
    let bytes = 0;
    for (let i = 0; i < N; i++) bytes += Buffer.byteLength(frame(i));
    handle.push(bytes > 0 ? '' : '\n', 0, false);
  },
  'per-message'(handle) {
    for (let i = 0; i < N; i++) {
      const f = frame(i);
      handle.push(f, Buffer.byteLength(f), false);
    }
  },
  'string-batch'(handle) {
    let staged = '';
    let bytes = 0;
    for (let i = 0; i < N; i++) {
      const f = frame(i);
      staged += f;
      bytes += Buffer.byteLength(f);
      if (bytes >= STAGE) {
        handle.push(staged, bytes, false);
        staged = '';
        bytes = 0;
      }
    }
    if (bytes) handle.push(staged, bytes, false);
  },
  'buffer-batch'(handle) {
    let buf = Buffer.allocUnsafe(STAGE);
    let used = 0;
    for (let i = 0; i < N; i++) {
      const f = frame(i);
      if (used + f.length * 3 > buf.length) {
        handle.push(buf, used, false);
        used = 0;
      }
      used += buf.utf8Write(f, used);
    }
    if (used) handle.push(buf, used, false);
  },
};

async function main() {
  let binding;
  try {
    binding = require('../dist/transport/addon.js').loadBinding();
  } catch (err) {
    console.log(`transport: native addon unavailable (${err.message}); build it with npm run build:native`);
    process.exit(1);
  }
  console.log(`transport: native (${require.resolve('../build/Release/iottly_native.node')})`);
  console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0].model}), ${N} frames of ~${frame(N / 2).length} bytes, ${TRIALS} trials each`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iottly-handoff-'));
  const socketPath = path.join(dir, 'sink.sock');
  const child = fork(__filename, ['--sink', socketPath], { stdio: 'inherit' });
  const fromChild = () => new Promise((resolve) => child.once('message', resolve));
  await fromChild();

  let total = 0;
  for (let i = 0; i < N; i++) total += Buffer.byteLength(frame(i));

  const results = {};
  for (let trial = 0; trial < TRIALS; trial++) {
    for (const [name, run] of Object.entries(methods)) {
      child.send({ reset: true });
      const status = new Float64Array(3);
      let onLink;
      const linked = new Promise((r) => (onLink = r));
      let onStopped;
      const stopped = new Promise((r) => (onStopped = r));
      const opts = {
        socketPath,
        reconnectIntervalMs: 50,
        maxBufferedMsgs: 10,
        maxQueueBytes: 4 * 1024 ** 3,
        highWaterMark: 4 * 1024 ** 3,
        maxFrameBytes: 1024 * 1024,
      };
      const handle = new binding.Transport(opts, status, (events) => {
        for (let i = 0; i < events.length; i += 3) {
          if (events[i] === binding.events.link) onLink();
          if (events[i] === binding.events.stopped) onStopped();
        }
      });
      const hello = '{"signal":{"sdkclient":{"name":"bench","status":"connected","version":"1.3.0"}}}\n';
      handle.start(hello);
      await linked;
      const done = fromChild();
      child.send({ expect: name === 'baseline' ? hello.length : total + hello.length });
      const t0 = process.hrtime.bigint();
      run(handle);
      const t1 = process.hrtime.bigint();
      await done;
      const t2 = process.hrtime.bigint();
      handle.stop('', 1000);
      await stopped;
      handle.join();
      const r = (results[name] ??= { handoff: [], delivered: [] });
      r.handoff.push(Number(t1 - t0) / 1e6);
      r.delivered.push(Number(t2 - t0) / 1e6);
    }
  }
  child.send({ exit: true });
  fs.rmSync(dir, { recursive: true, force: true });

  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log('\n| method | hand-off ms (median) | ns per frame | delivered ms (median) | frames/s delivered |');
  console.log('|---|---:|---:|---:|---:|');
  for (const [name, r] of Object.entries(results)) {
    const h = median(r.handoff);
    const d = median(r.delivered);
    if (name === 'baseline') {
      console.log(`| baseline (build + measure frames, no hand-off) | ${h.toFixed(0)} | ${((h * 1e6) / N).toFixed(0)} | - | - |`);
      continue;
    }
    console.log(
      `| ${name} | ${h.toFixed(0)} | ${((h * 1e6) / N).toFixed(0)} | ${d.toFixed(0)} | ${Math.round(N / (d / 1000)).toLocaleString('en-US')} |`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
