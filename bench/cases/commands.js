'use strict';
// Case 5: commands from the agent. Dispatch rate (the stand-in writes a block of commands at once)
// and latency from the stand-in writing a command to its callback running (p50/p99, one command per
// millisecond), with the app idle and while it sends 100 000 messages/s on the same connection.
// Baseline: a naive node:net client that splits lines, JSON.parses and calls the handler itself.

const { main } = require('../lib/harness');
const { startAgent } = require('../lib/agent');
const { cell } = require('../lib/report');
const { quantile, median, fmt } = require('../lib/stats');
const u = require('../lib/util');

const BLOCK = 50_000;
const LOAD_RATE = 100_000;
const SECONDS = 2;
const ROUNDS = 3;

function variants(ctx) {
  const list = ctx.transports.map((t) => ({ id: `sdk-${t}`, kind: 'sdk', transport: t }));
  list.push({ id: 'naive', kind: 'naive', transport: 'node:net', baseline: 'naive client: split lines, JSON.parse, call the handler' });
  return list;
}

/** A connection with a command handler; `onCommand(params)` is called for every 'bench' command. */
async function connect(v, agent, onCommand) {
  if (v.kind === 'sdk') {
    const sdk = await u.linkedSDK(v.transport, agent.socketPath);
    sdk.subscribe('bench', onCommand);
    return { send: (p) => sdk.send(p), close: () => sdk.stop() };
  }
  const client = await u.naiveClient(agent.socketPath);
  let rest = '';
  client.socket.on('data', (chunk) => {
    const lines = (rest + chunk.toString('utf8')).split('\n');
    rest = lines.pop();
    for (const line of lines) {
      if (!line) continue;
      let f;
      try {
        f = JSON.parse(line);
      } catch {
        continue;
      }
      if (f.data && f.data.bench) onCommand(f.data.bench);
    }
  });
  return { send: (p) => client.send(p), close: client.close };
}

async function dispatchTrial(v, agent, n) {
  await agent.reset();
  let count = 0;
  let resolveDone;
  const done = new Promise((r) => (resolveDone = r));
  const conn = await connect(v, agent, () => {
    if (++count === n) resolveDone(u.now());
  });
  await u.sleep(50);
  const { tStart } = await agent.commands(n, 0);
  const tDone = await u.withTimeout(done, 30_000, `${n} commands dispatched`);
  await conn.close();
  return { rate: n / ((tDone - tStart) / 1e9) };
}

async function latencyTrial(v, agent, seconds, loaded) {
  await agent.reset();
  const lat = [];
  const conn = await connect(v, agent, (p) => lat.push((u.now() - p.t) / 1e3));
  await u.sleep(50);
  const payload = u.makePayload('small');
  const n = seconds * 1000;
  const load = loaded
    ? u.pace(LOAD_RATE, seconds + 0.2, (count, first) => {
        for (let i = 0; i < count; i++) {
          payload.seq = first + i;
          conn.send(payload);
        }
      })
    : Promise.resolve(0);
  await agent.commands(n, 1);
  const sent = await load;
  await u.sleep(50);
  let delivered = 0;
  if (loaded) {
    try {
      delivered = (await agent.expect(sent, 10_000)).lines;
    } catch {
      delivered = (await agent.stats()).lines;
    }
  }
  await conn.close();
  return { count: lat.length, expected: n, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), max: Math.max(...lat), sent, delivered };
}

async function runVariant(v, ctx, log) {
  const n = ctx.quick ? BLOCK / 5 : BLOCK;
  const seconds = ctx.quick ? 1 : SECONDS;
  const agent = await startAgent();
  try {
    await dispatchTrial(v, agent, n / 5); // warm-up
    const dispatch = [];
    const idle = [];
    const loaded = [];
    {
      dispatch.push(await dispatchTrial(v, agent, n));
      idle.push(await latencyTrial(v, agent, seconds, false));
      loaded.push(await latencyTrial(v, agent, seconds, true));
      const i = idle[0];
      const l = loaded[0];
      log(`dispatch ${fmt(dispatch[0].rate)} cmd/s; latency idle p50 ${fmt(i.p50)} µs p99 ${fmt(i.p99)} µs; under ${fmt(LOAD_RATE)} msg/s p50 ${fmt(l.p50)} µs p99 ${fmt(l.p99)} µs (${l.count}/${l.expected} commands, ${l.delivered}/${l.sent} messages delivered)`);
    }
    return { n, seconds, dispatch, idle, loaded };
  } finally {
    await agent.stop();
  }
}

function report(runs) {
  const rows = [];
  const summary = [];
  for (const r of runs) {
    if (!r.results.length) continue;
    const v = r.variant;
    const x = r.results[0];
    const label = v.kind === 'sdk' ? `SDK, ${v.transport}` : 'naive client (baseline)';
    rows.push([
      label,
      cell(x.dispatch.map((d) => d.rate)),
      cell(x.idle.map((d) => d.p50)),
      cell(x.idle.map((d) => d.p99)),
      cell(x.loaded.map((d) => d.p50)),
      cell(x.loaded.map((d) => d.p99)),
      cell(x.loaded.map((d) => d.max)),
      `${x.loaded.reduce((a, d) => a + d.count, 0)}/${x.loaded.reduce((a, d) => a + d.expected, 0)}`,
      `${x.loaded.reduce((a, d) => a + d.delivered, 0)}/${x.loaded.reduce((a, d) => a + d.sent, 0)}`,
    ]);
    const p99 = median(x.loaded.map((d) => d.p99));
    if (v.kind === 'sdk') {
      summary.push({ label: `${v.transport}: command latency p99 under ${fmt(LOAD_RATE)} msg/s`, text: `${fmt(p99 / 1000)} ms (worst repeat ${fmt(Math.max(...x.loaded.map((d) => d.p99)) / 1000)} ms); idle ${fmt(median(x.idle.map((d) => d.p99)) / 1000)} ms`, target: '<= 2 ms', met: p99 <= 2000 });
    }
  }
  const naive = runs.find((r) => r.variant.kind === 'naive' && r.results.length);
  if (naive) {
    const base = median(naive.results[0].dispatch.map((d) => d.rate));
    for (const r of runs.filter((x) => x.variant.kind === 'sdk' && x.results.length)) {
      summary.push({ label: `${r.variant.transport}: dispatch rate vs naive client`, text: `${(median(r.results[0].dispatch.map((d) => d.rate)) / base).toFixed(2)}x` });
    }
  }
  return {
    method:
      `Dispatch: the stand-in writes ${fmt(runs[0]?.results[0]?.n ?? BLOCK)} commands in one write; rate = commands ÷ (last callback − write), on the shared monotonic clock. ` +
      `Latency: one command per millisecond for ${SECONDS} s, each stamped when the stand-in writes it; measured when the callback runs. Under load the app sends ${fmt(LOAD_RATE)} msg/s of ~130 B on the same connection from a 1 ms timer. ${ROUNDS} rounds (a fresh process per receiver per round, after a warm-up block, receivers interleaved); median (min–max) of the per-round figures.`,
    tables: [
      {
        title: 'median (min–max) of the repeats; latencies in µs',
        columns: ['receiver', 'dispatch cmd/s', 'idle p50 µs', 'idle p99 µs', 'loaded p50 µs', 'loaded p99 µs', 'loaded max µs', 'commands seen under load', 'telemetry delivered under load'],
        rows,
      },
    ],
    summary,
  };
}

module.exports = main({ file: __filename, name: 'commands', title: 'commands: dispatch rate and latency, idle and under send load', variants, runVariant, report, rounds: ROUNDS });
