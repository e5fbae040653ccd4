'use strict';
// Reconnection: how soon the SDK is back once the agent listens again, and how often it tries while
// the agent is away. The agent stand-in (lib/restart-agent.js) goes away and comes back at random
// moments; the latency is from its listen() to the first bytes (the SDK's hello) on its own clock.
// Baseline: the same SDK forced to poll every reconnectIntervalMs (200 ms by default), as every
// version did before the socket path was watched (IOTTLY_SDK_TEST_FAULT=no-watch).

const variantArg = process.argv.indexOf('--variant');
if (variantArg !== -1 && String(process.argv[variantArg + 1]).endsWith('-poll')) {
  // Read when the SDK loads (below, through lib/util): must be set first.
  process.env.IOTTLY_SDK_TEST_FAULT = 'no-watch';
}

const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { main } = require('../lib/harness');
const { cell } = require('../lib/report');
const { median, fmt } = require('../lib/stats');
const u = require('../lib/util');

const RESTARTS = 12;
const AWAY_MS = [300, 1000];
const LONG_AWAY_S = 10;

function variants(ctx) {
  const list = [];
  for (const t of ctx.transports) list.push({ id: `sdk-${t}`, kind: 'watch', transport: t });
  for (const t of ctx.transports) list.push({ id: `sdk-${t}-poll`, kind: 'poll', transport: t, baseline: 'the same SDK polling every reconnectIntervalMs (200 ms), no watch' });
  return list;
}

function startAgent(socketPath) {
  const child = fork(path.join(__dirname, '..', 'lib', 'restart-agent.js'), [socketPath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = (key) =>
    new Promise((resolve) => {
      const on = (m) => {
        if (m[key] === undefined) return;
        child.off('message', on);
        resolve(m[key]);
      };
      child.on('message', on);
    });
  return { child, next };
}

async function runVariant(v, ctx, log) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iottly-bench-rc-'));
  const socketPath = path.join(dir, 'agent.sock');
  const agent = startAgent(socketPath);
  await agent.next('ready');
  const { IottlySDK } = require('../../dist/index.js');
  const sdk = new IottlySDK(u.APP, { socketPath, transport: v.transport });
  sdk.on('connectError', () => {});
  const restarts = ctx.quick ? 4 : RESTARTS;
  const latencies = [];
  const attemptsPerAbsence = [];
  try {
    // One long absence first (the SDK starts with no agent): the steady attempt rate.
    const longS = ctx.quick ? 3 : LONG_AWAY_S;
    sdk.start();
    await u.sleep(500); // past the first attempt and any quick retries
    const e0 = sdk.stats().connectErrors;
    await u.sleep(longS * 1000);
    const steadyRate = (sdk.stats().connectErrors - e0) / longS;
    log(`${longS} s away: ${fmt(steadyRate)} attempts/s`);
    for (let i = 0; i <= restarts; i++) {
      agent.child.send('up');
      const listening = await agent.next('listening');
      const first = await agent.next('firstBytes');
      if (i > 0) latencies.push(first - listening);
      await u.sleep(100);
      if (i === restarts) break;
      const e1 = sdk.stats().connectErrors;
      agent.child.send('down');
      await agent.next('down');
      await u.sleep(AWAY_MS[0] + Math.random() * (AWAY_MS[1] - AWAY_MS[0]));
      attemptsPerAbsence.push(sdk.stats().connectErrors - e1);
    }
    log(`reconnect ms: median ${fmt(median(latencies))}, max ${fmt(Math.max(...latencies))}; attempts per absence: median ${fmt(median(attemptsPerAbsence))}`);
    return { latencies, attemptsPerAbsence, steadyRate };
  } finally {
    await sdk.stop();
    agent.child.send('exit');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function report(runs) {
  const rows = [];
  const summary = [];
  for (const r of runs) {
    if (!r.results.length) continue;
    const { latencies, attemptsPerAbsence, steadyRate } = r.results[0];
    const v = r.variant;
    const p50 = median(latencies);
    const p90 = quantile(latencies, 0.9);
    rows.push([
      `SDK, ${v.transport}${v.kind === 'poll' ? ', polling (no watch)' : ', watching the path'}`,
      fmt(p50),
      fmt(p90),
      fmt(Math.max(...latencies)),
      fmt(steadyRate),
      cell(attemptsPerAbsence),
    ]);
    if (v.kind === 'watch') {
      summary.push({ label: `${v.transport}: reconnect latency median`, text: `${fmt(p50)} ms`, target: '<= 5 ms', met: p50 <= 5 });
      summary.push({ label: `${v.transport}: reconnect latency p90`, text: `${fmt(p90)} ms`, target: '<= 20 ms', met: p90 <= 20 });
      summary.push({ label: `${v.transport}: attempts a second while the agent is away`, text: `${fmt(steadyRate)}`, target: '<= 0.5', met: steadyRate <= 0.5 });
    }
  }
  return {
    method:
      `The agent stand-in (a process) goes away (closes, removing its socket) and listens again after ${AWAY_MS[0]}–${AWAY_MS[1]} ms, ${RESTARTS} times; latency is from its listen() to the first bytes of the SDK's new connection, on its own clock. ` +
      `Attempts a second: connectErrors over one ${LONG_AWAY_S} s absence with no socket file (after the first half second). Attempts per absence: over each short absence, including the ones its departure itself causes. ` +
      'The polling rows are the same SDK with the watch disabled, which is how it behaved before it watched the path.',
    tables: [{ title: 'reconnection, per transport', columns: ['sender', 'latency p50 ms', 'p90 ms', 'max ms', 'attempts/s away', 'attempts per absence'], rows }],
    summary,
  };
}

module.exports = main({ file: __filename, name: 'reconnect', title: 'reconnection: latency after the agent listens, attempts while it is away', variants, runVariant, report, rounds: 1, timeoutMs: 120_000 });
