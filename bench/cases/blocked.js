'use strict';
// Case 6: a blocked main thread. The app sends a block of messages, then busy-waits 200 ms. How many
// of the accepted messages reach the agent before, during and after the block shows whether the
// transport writes off the main thread. Baseline: the naive client.

const { main } = require('../lib/harness');
const { startAgent } = require('../lib/agent');
const { cell } = require('../lib/report');
const { median, fmt } = require('../lib/stats');
const u = require('../lib/util');

const MESSAGES = 25_000; // ~3.2 MB: under the default 4 MiB queue bound, well over a socket buffer
const BLOCK_MS = 200;
const ROUNDS = 5;

function variants(ctx) {
  const list = ctx.transports.map((t) => ({ id: `sdk-${t}`, kind: 'sdk', transport: t }));
  list.push({ id: 'naive', kind: 'naive', transport: 'node:net', baseline: 'naive client, one socket.write per frame' });
  return list;
}

function busyWait(ms) {
  const end = u.now() + ms * 1e6;
  while (u.now() < end);
}

async function trial(v, agent, n) {
  await agent.reset({ trace: true });
  let send;
  let close;
  let stats = () => null;
  if (v.kind === 'sdk') {
    const sdk = await u.linkedSDK(v.transport, agent.socketPath);
    send = (p) => sdk.send(p);
    close = () => sdk.stop();
    stats = () => sdk.stats();
  } else {
    const client = await u.naiveClient(agent.socketPath);
    send = (p) => client.send(p);
    close = client.close;
  }
  await u.sleep(50);
  const payload = u.makePayload('small');
  const t0 = u.now();
  for (let i = 0; i < n; i++) {
    payload.seq = i;
    send(payload);
  }
  const tBlock = u.now();
  busyWait(BLOCK_MS);
  const tUnblock = u.now();
  const got = await agent.expect(n, 20_000);
  const st = await agent.stats({ withTrace: true });
  const s = stats();
  await close();
  let before = 0;
  let during = 0;
  let after = 0;
  for (let i = 0; i < st.trace.length; i += 2) {
    const t = st.trace[i];
    const k = st.trace[i + 1];
    if (t < tBlock) before += k;
    else if (t <= tUnblock) during += k;
    else after += k;
  }
  return {
    sendMs: (tBlock - t0) / 1e6,
    before,
    during,
    after,
    lastAfterUnblockMs: Math.max(0, (got.tLast - tUnblock) / 1e6),
    dropped: s ? s.dropped.total : 0,
  };
}

async function runVariant(v, ctx, log) {
  const agent = await startAgent();
  const trials = [];
  try {
    await trial(v, agent, MESSAGES / 5); // warm-up
    {
      const t = await trial(v, agent, MESSAGES);
      trials.push(t);
      log(`${MESSAGES} accepted in ${fmt(t.sendMs)} ms; at the agent before the block ${t.before}, during ${t.during}, after ${t.after}; last one ${fmt(t.lastAfterUnblockMs)} ms after the block${t.dropped ? `; DROPPED ${t.dropped}` : ''}`);
    }
    return { n: MESSAGES, trials };
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
    const ts = r.results[0].trials;
    rows.push([
      v.kind === 'sdk' ? `SDK, ${v.transport}` : 'naive client (baseline)',
      String(r.results[0].n),
      cell(ts.map((t) => t.sendMs)),
      cell(ts.map((t) => t.before)),
      cell(ts.map((t) => t.during)),
      cell(ts.map((t) => t.after)),
      cell(ts.map((t) => t.lastAfterUnblockMs)),
      String(ts.reduce((a, t) => a + t.dropped, 0)),
    ]);
    summary.push({
      label: `${v.kind === 'sdk' ? v.transport : 'naive client'}: messages reaching the agent during the ${BLOCK_MS} ms block`,
      text: `${fmt(median(ts.map((t) => t.during)))} of ${r.results[0].n} (${fmt(median(ts.map((t) => t.before)))} before it)`,
    });
  }
  return {
    method: `${MESSAGES} messages of ~130 B sent in one synchronous loop (default SDK options), then the main thread busy-waits ${BLOCK_MS} ms. The stand-in timestamps every read; messages are counted by when their read happened relative to the block. ${ROUNDS} rounds, a fresh process per sender per round after a warm-up, senders interleaved.`,
    tables: [
      {
        title: 'median (min–max) of the repeats',
        columns: ['sender', 'accepted', 'send loop ms', 'at agent before the block', 'during the block', 'after the block', 'last one ms after the block', 'dropped'],
        rows,
      },
    ],
    summary,
  };
}

module.exports = main({ file: __filename, name: 'blocked', title: 'blocked main thread: what reaches the agent during a 200 ms block', variants, runVariant, report, rounds: ROUNDS });
