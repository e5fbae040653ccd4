'use strict';
// Throughput sanity check: N ~120-byte IottlySDK.send() calls in one synchronous loop, wall-clock
// until the simulator (its own process, keepFrames:false) has them all, for each transport.
// Usage: node bench/native-vs-js.js [messages=1000000] [transports=native,js]
const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

if (process.argv[2] === '--agent') {
  const { AgentSimulator } = require('../dist/sim/index.js');
  const sim = new AgentSimulator({ socketPath: process.argv[3], keepFrames: false });
  let target = Infinity;
  // One agent process per trial, so the target is an absolute count; the IPC message may arrive
  // after the frames themselves.
  const check = () => {
    if (sim.counts.telemetry >= target) {
      target = Infinity;
      process.send({ done: Date.now() });
    }
  };
  sim.on('telemetry', check);
  sim.listen().then(() => process.send({ listening: true }));
  process.on('message', (m) => {
    if (m.expect) {
      target = m.expect;
      check();
    }
    if (m.exit) sim.close().then(() => process.exit(0));
  });
  return;
}

const { IottlySDK, nativeAvailable } = require('../dist/index.js');
const N = Number(process.argv[2] || 1_000_000);
const kinds = (process.argv[3] || 'native,js').split(',').filter((k) => k !== 'native' || nativeAvailable());

async function trial(kind) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iottly-tp-'));
  const socketPath = path.join(dir, 'agent.sock');
  const agent = fork(__filename, ['--agent', socketPath]);
  const next = () => new Promise((resolve) => agent.once('message', resolve));
  await next();
  const sdk = new IottlySDK('bench', {
    socketPath,
    transport: kind,
    maxQueueBytes: 1024 * 1024 * 1024,
    highWaterMark: 1024 * 1024 * 1024,
  });
  await new Promise((resolve) => {
    sdk.on('agentStatus', (s) => s === 'started' && resolve());
    sdk.start();
  });
  const done = next();
  agent.send({ expect: N });
  const payload = { temp: 21.5, unit: 'C', ok: true, tag: 'abcdefghijkl' };
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    payload.seq = i;
    sdk.send(payload);
  }
  const accepted = Date.now();
  const { done: at } = await done;
  const s = sdk.stats();
  await sdk.stop();
  agent.send({ exit: true });
  fs.rmSync(dir, { recursive: true, force: true });
  return { kind, acceptMs: accepted - t0, deliveredMs: at - t0, dropped: s.dropped.total, frameBytes: Math.round(s.bytesWritten / s.written) };
}

(async () => {
  console.log(`transports: ${kinds.join(', ')}; ${N} messages; node ${process.version}, ${os.cpus().length} CPUs`);
  for (const kind of kinds) {
    const r = await trial(kind);
    console.log(
      `${kind.padEnd(6)} send loop ${r.acceptMs} ms, all delivered after ${r.deliveredMs} ms ` +
        `(${Math.round(N / (r.deliveredMs / 1000)).toLocaleString('en-US')} msg/s, ~${r.frameBytes} B/frame, dropped ${r.dropped})`,
    );
  }
})();
