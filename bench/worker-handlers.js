'use strict';
// Main-thread command callbacks vs worker handlers (issue 5's performance section). Runnable on its
// own: `node bench/worker-handlers.js [--quick] [--transport js|native] [--json]`. Needs `npm run build`.
//
// load      'none' first: the telemetry timer alone (the reference for the rates). Then a handler that burns 20 ms of CPU per command, 50 commands/s from the agent, while the
//           app sends telemetry from a 10 ms timer, 200 messages per tick (20 000 messages/s when
//           the event loop keeps up; ticks a stalled loop misses are not made up, as in an app
//           sampling sensors on a timer). Reported: event-loop delay p99 (monitorEventLoopDelay,
//           1 ms resolution), telemetry delivered to the agent per second, commands completed.
// dispatch  A trivial handler, 200 commands/s, no other load: latency from the frame reaching the
//           SDK (a wrapper around the SDK's frame handler) to the handler's first line, p50/p99.
//           The worker side reads performance.timeOrigin + performance.now(), comparable across
//           threads of one process.
//
// Worker handlers run twice under load: at the default priority and with options.workers.niceIncrement
// 10, which lets the main thread preempt CPU-bound handlers when cores are short.
//
// The agent is the bench's stand-in (bench/lib/agent-process.js) in its own process.

const { isMainThread, BroadcastChannel } = require('node:worker_threads');

const BURN_MS = 20;
const DISPATCH_CHANNEL = 'iottly-bench-dispatch';

function burn(ms) {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // CPU work stands in for parsing, resizing, inference...
  }
}

// ---- handlers (also loaded into worker threads, where the bench below does not run) ------------

function heavy() {
  burn(BURN_MS);
  return undefined;
}

let dispatchOut = null;
function trivial(params) {
  const start = performance.timeOrigin + performance.now();
  if (!dispatchOut) {
    dispatchOut = new BroadcastChannel(DISPATCH_CHANNEL);
    dispatchOut.unref();
  }
  dispatchOut.postMessage([params.i, start]);
  return undefined;
}

module.exports = { heavy, trivial };

// ---- bench -----------------------------------------------------------------------------------------

async function run() {
  const path = require('node:path');
  const { monitorEventLoopDelay } = require('node:perf_hooks');
  const { IottlySDK, workerHandler, defaultTransport } = require(path.join(__dirname, '..', 'dist', 'index.js'));
  const { startAgent } = require('./lib/agent');

  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const ti = argv.indexOf('--transport');
  const transport = ti !== -1 ? argv[ti + 1] : defaultTransport();
  const seconds = quick ? 4 : 10;
  console.log(`transport: ${transport}`);
  console.log(`node ${process.version}, ${require('node:os').cpus().length} cpus, ${seconds} s per trial\n`);

  const agent = await startAgent();
  const rows = [];

  async function linked(options = {}) {
    await agent.reset();
    const sdk = new IottlySDK('bench-workers', { socketPath: agent.socketPath, transport, ...options });
    const started = new Promise((resolve) => sdk.once('agentStatus', resolve));
    sdk.start();
    await started;
    return sdk;
  }

  async function load(path_, niceIncrement = 0) {
    const sdk = await linked({
      workers: { minThreads: 2, maxThreads: 2, maxQueue: 1000, niceIncrement },
      maxQueueBytes: 64 * 1024 * 1024,
      highWaterMark: 16 * 1024 * 1024,
    });
    let completed = 0;
    if (path_ === 'none') {
      // Baseline: the telemetry timer alone.
    } else if (path_ === 'main') {
      sdk.subscribe('work', () => {
        heavy();
        completed++;
      });
    } else {
      sdk.subscribe('work', workerHandler(__filename, 'heavy'));
    }
    const sample = { temp: 21.5, hum: 40, unit: 'C', ok: true, seq: 0 };
    let sent = 0;
    const tick = setInterval(() => {
      for (let i = 0; i < 200; i++) {
        sample.seq = sent++;
        sdk.send(sample);
      }
    }, 10);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    const before = await agent.stats();
    delay.enable();
    const t0 = performance.now();
    if (path_ === 'none') await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    else await agent.commands(seconds * 50, 20, 'work');
    const elapsed = (performance.now() - t0) / 1000;
    delay.disable();
    clearInterval(tick);
    const after = await agent.stats();
    const dispatched = sdk.stats().commandsDispatched;
    if (path_ === 'worker') completed = dispatched - sdk.stats().commandsDropped;
    await sdk.stop();
    const row = {
      case: 'load',
      path: niceIncrement ? `${path_}, nice +${niceIncrement}` : path_,
      loopDelayP50ms: delay.percentile(50) / 1e6,
      loopDelayP99ms: delay.percentile(99) / 1e6,
      loopDelayMaxMs: delay.max / 1e6,
      telemetryPerSec: (after.lines - before.lines) / elapsed,
      sentPerSec: sent / elapsed,
      commands: dispatched,
      completed,
    };
    rows.push(row);
    console.log(
      `load     ${row.path.padEnd(16)}  loop delay p50 ${row.loopDelayP50ms.toFixed(2)} ms  p99 ${row.loopDelayP99ms.toFixed(2)} ms  ` +
        `max ${row.loopDelayMaxMs.toFixed(1)} ms  telemetry sent ${row.sentPerSec.toFixed(0)}/s delivered ${row.telemetryPerSec.toFixed(0)}/s  ` +
        `commands ${row.commands} (completed ${row.completed})`,
    );
  }

  async function dispatch(path_) {
    const sdk = await linked({ workers: { minThreads: 1, maxThreads: 1 } });
    const arrivals = [];
    const latencies = [];
    // Timestamp every command frame as it reaches the SDK (bench-only wrapper of a private method).
    const handleFrame = sdk.handleFrame.bind(sdk);
    sdk.handleFrame = (line) => {
      if (line[2] === 0x64 /* {"d */) arrivals.push(performance.timeOrigin + performance.now());
      handleFrame(line);
    };
    const onStart = ([i, start]) => {
      if (arrivals[i] !== undefined) latencies.push((start - arrivals[i]) * 1000);
    };
    let inbox = null;
    if (path_ === 'main') {
      sdk.subscribe('ping', (params) => onStart([params.i, performance.timeOrigin + performance.now()]));
    } else {
      inbox = new BroadcastChannel(DISPATCH_CHANNEL);
      inbox.onmessage = (e) => onStart(e.data);
      sdk.subscribe('ping', workerHandler(__filename, 'trivial'));
    }
    // Warm-up: the worker's module load is a one-off, not dispatch overhead.
    await agent.commands(20, 5, 'ping');
    arrivals.length = 0;
    latencies.length = 0;
    await agent.commands(seconds * 200, 5, 'ping');
    const deadline = Date.now() + 5000;
    while (latencies.length < seconds * 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    inbox?.close();
    await sdk.stop();
    latencies.sort((a, b) => a - b);
    const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
    const row = { case: 'dispatch', path: path_, samples: latencies.length, p50us: q(0.5), p99us: q(0.99) };
    rows.push(row);
    console.log(`dispatch ${path_.padEnd(16)}  frame -> handler start p50 ${row.p50us.toFixed(0)} µs  p99 ${row.p99us.toFixed(0)} µs  (${row.samples} commands)`);
  }

  try {
    await load('none');
    await load('main');
    await load('worker');
    await load('worker', 10);
    await dispatch('main');
    await dispatch('worker');
  } finally {
    await agent.stop();
  }
  if (argv.includes('--json')) console.log(JSON.stringify(rows));
}

if (isMainThread && require.main === module) {
  run().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
