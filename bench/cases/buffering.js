'use strict';
// Case 3: the agent is away. 1 000 000 send() calls with maxBufferedMsgs = 10 000: the cost of each
// call over time (it must stay flat), RSS growth, then the agent appears and exactly the newest
// 10 000 must arrive, in order; how long that drain takes.

const { IottlySDK } = require('../../dist/index.js');
const { main } = require('../lib/harness');
const { startAgent } = require('../lib/agent');
const { cell } = require('../lib/report');
const { median, fmt } = require('../lib/stats');
const u = require('../lib/util');

const TOTAL = 1_000_000;
const SLICES = 20;
const KEEP = 10_000;
const ROUNDS = 3;

function variants(ctx) {
  const list = ctx.transports.map((t) => ({ id: `sdk-${t}`, kind: 'sdk', transport: t}));
  // The same with V8's young generation capped at 2 MiB per semi-space: shows how much of the RSS
  // growth is the heap sizing itself rather than anything the SDK keeps.
  for (const t of ctx.transports) {
    list.push({ id: `sdk-${t}-semi2`, kind: 'sdk', transport: t, execArgv: ['--max-semi-space-size=2'] });
  }
  list.push({ id: 'ring', kind: 'ring', transport: 'none', baseline: 'serialise into a 10 000-slot ring, no SDK' });
  return list;
}

/** The baseline: what serialising every message and keeping the newest 10 000 costs in plain JS. */
async function runRing(total, log) {
  const payload = u.makePayload('small');
  const ring = new Array(KEEP);
  await u.sleep(50);
  if (global.gc) global.gc();
  const rss0 = u.rssMB();
  const heap0 = process.memoryUsage().heapUsed / 1048576;
  const slices = [];
  const per = total / SLICES;
  for (let s = 0; s < SLICES; s++) {
    const t0 = u.now();
    for (let i = s * per; i < (s + 1) * per; i++) {
      payload.seq = i;
      ring[i % KEEP] = u.FRAME_HEAD + JSON.stringify(payload) + '}}\n';
    }
    const ns = (u.now() - t0) / per;
    const rss = u.rssMB();
    slices.push({ sent: (s + 1) * per, nsPerCall: ns, rssMB: rss, growthMB: rss - rss0 });
    await new Promise((r) => setImmediate(r));
  }
  const peak = Math.max(...slices.map((x) => x.growthMB));
  if (global.gc) global.gc();
  const retainedMB = u.rssMB() - rss0;
  const heapMB = process.memoryUsage().heapUsed / 1048576 - heap0;
  log(`${fmt(total)} ring writes: ns/call median ${fmt(median(slices.map((x) => x.nsPerCall)))}; RSS growth peak ${fmt(peak)} MB, ${fmt(retainedMB)} MB after a full GC`);
  return { total, rss0, slices, peakGrowthMB: peak, retainedMB, heapMB, ring: ring.length };
}

async function runVariant(v, ctx, log) {
  const total = ctx.quick ? TOTAL / 4 : TOTAL;
  if (v.kind === 'ring') return runRing(total, log);
  const agent = await startAgent({ listen: false });
  try {
    const sdk = new IottlySDK(u.APP, { socketPath: agent.socketPath, transport: v.transport, maxBufferedMsgs: KEEP });
    if (sdk.transport !== v.transport) throw new Error(`got transport ${sdk.transport}`);
    let drops = 0;
    sdk.on('drop', (d) => (drops = d.total));
    sdk.on('connectError', () => {});
    sdk.start();
    const payload = u.makePayload('small');
    await u.sleep(50);
    if (global.gc) global.gc();
    const rss0 = u.rssMB();
    const heap0 = process.memoryUsage().heapUsed / 1048576;
    const slices = [];
    const per = total / SLICES;
    let falseReturns = 0;
    for (let s = 0; s < SLICES; s++) {
      const t0 = u.now();
      for (let i = s * per; i < (s + 1) * per; i++) {
        payload.seq = i;
        if (!sdk.send(payload)) falseReturns++;
      }
      const ns = (u.now() - t0) / per;
      const rss = u.rssMB();
      slices.push({ sent: (s + 1) * per, nsPerCall: ns, rssMB: rss, growthMB: rss - rss0 });
      // Let the reconnect timer and anything else due run between slices, as in a real app.
      await new Promise((r) => setImmediate(r));
    }
    const peak = Math.max(...slices.map((x) => x.growthMB));
    const before = sdk.stats();
    if (global.gc) global.gc();
    const retainedMB = u.rssMB() - rss0;
    const heapMB = process.memoryUsage().heapUsed / 1048576 - heap0;
    log(`${fmt(total)} sends: ns/call first slice ${fmt(slices[0].nsPerCall)}, median ${fmt(median(slices.map((x) => x.nsPerCall)))}, last ${fmt(slices[SLICES - 1].nsPerCall)}; RSS growth peak ${fmt(peak)} MB, ${fmt(retainedMB)} MB after a full GC; buffered ${before.buffered}, dropped ${before.dropped.overflow}`);

    // The agent appears: the SDK finds it on its next retry (every 200 ms) and drains.
    await agent.reset({ keep: true });
    const listenedAt = (await agent.listen()).t;
    const got = await agent.expect(KEEP, 20_000);
    await u.sleep(300); // anything beyond the 10 000 would show up now
    const st = await agent.stats({ withKept: true });
    const seqs = st.kept.seqs;
    let inOrder = seqs.length === KEEP;
    for (let i = 0; inOrder && i < seqs.length; i++) if (seqs[i] !== total - KEEP + i) inOrder = false;
    const after = sdk.stats();
    await sdk.stop();
    const drainFromListenMs = (got.tLast - listenedAt) / 1e6;
    const drainFromConnectMs = (got.tLast - got.tConnect) / 1e6;
    log(`agent up: ${seqs.length} arrived (${inOrder ? 'exactly the newest, in order' : `NOT the newest ${KEEP} in order: first ${seqs[0]}, last ${seqs[seqs.length - 1]}`}), drain ${fmt(drainFromConnectMs)} ms after connect, ${fmt(drainFromListenMs)} ms after listen`);
    return {
      total,
      rss0,
      slices,
      peakGrowthMB: peak,
      retainedMB,
      heapMB,
      falseReturns,
      dropped: before.dropped.overflow,
      dropEventsTotal: drops,
      buffered: before.buffered,
      arrived: seqs.length,
      unparsable: st.kept.bad,
      firstSeq: seqs[0],
      lastSeq: seqs[seqs.length - 1],
      inOrder,
      drainFromListenMs,
      drainFromConnectMs,
      writtenAfter: after.written,
    };
  } finally {
    await agent.stop();
  }
}

function report(runs) {
  const rows = [];
  const summary = [];
  const series = [];
  for (const r of runs) {
    if (!r.results.length) continue;
    const ring = r.variant.kind === 'ring';
    const semi = r.variant.execArgv ? ' (--max-semi-space-size=2)' : '';
    const t = ring ? 'baseline: stringify into a ring' : `${r.variant.transport}${semi}`;
    const res = r.results;
    const q = Math.floor(SLICES / 4);
    // Flat means the last quarter of the calls costs what the first quarter did (slice 0 is warm-up).
    const quarter = (x, from, to) => median(x.slices.slice(from, to).map((s) => s.nsPerCall));
    const firstQ = res.map((x) => quarter(x, 1, q + 1));
    const lastQ = res.map((x) => quarter(x, SLICES - q, SLICES));
    const flat = res.map((x, i) => lastQ[i] / firstQ[i]);
    rows.push([
      t,
      cell(firstQ),
      cell(lastQ),
      cell(flat, 1, 2),
      cell(res.map((x) => x.peakGrowthMB)),
      cell(res.map((x) => x.retainedMB)),
      cell(res.map((x) => x.heapMB)),
      ring ? '–' : res.map((x) => `${x.buffered}/${x.dropped}`).join(', '),
      ring ? '–' : res.map((x) => `${x.arrived}${x.inOrder ? ' ✓' : ' ✗'}`).join(', '),
      ring ? '–' : cell(res.map((x) => x.drainFromConnectMs)),
      ring ? '–' : cell(res.map((x) => x.drainFromListenMs)),
    ]);
    series.push({
      label: ring ? 'baseline: stringify into a ring' : `SDK, ${t}`,
      points: res[0].slices.map((s, i) => ({ x: s.sent, rss: median(res.map((x) => x.slices[i].growthMB)), ns: median(res.map((x) => x.slices[i].nsPerCall)) })),
    });
    if (ring) continue;
    const peak = median(res.map((x) => x.peakGrowthMB));
    summary.push({ label: `${t}: RSS growth over ${fmt(res[0].total)} sends (median of peaks)`, text: `${fmt(peak)} MB (worst ${fmt(Math.max(...res.map((x) => x.peakGrowthMB)))} MB)`, target: '<= 30 MB', met: res.every((x) => x.peakGrowthMB <= 30) });
    const worstFlat = Math.max(...flat);
    summary.push({ label: `${t}: send() cost, last quarter ÷ first quarter of the calls`, text: `${median(flat).toFixed(2)} (worst ${worstFlat.toFixed(2)})`, target: 'flat: <= 1.25 (lower is warm-up)', met: median(flat) <= 1.25 });
    summary.push({ label: `${t}: exactly the newest ${KEEP} arrive in order`, text: res.every((x) => x.inOrder) ? `yes, in all ${res.length} runs` : 'NO', met: res.every((x) => x.inOrder) });
  }
  return {
    method:
      `The socket path does not exist while ${fmt(runs[0]?.results[0]?.total ?? TOTAL)} \`send()\` calls of ~130 B messages run in ${SLICES} slices (the event loop turns between slices); \`maxBufferedMsgs: ${KEEP}\`. ` +
      `RSS growth is measured from just before the first call. Then the stand-in starts listening; the SDK retries every 200 ms, so "after listen" includes up to one retry interval. ${ROUNDS} runs, each in a fresh process, senders interleaved.`,
    tables: [
      {
        title: `median (min–max) of ${ROUNDS} runs; ns per send() call by slice of ${fmt((runs[0]?.results[0]?.total ?? TOTAL) / SLICES)} calls`,
        columns: ['sender', 'ns/call, first quarter', 'ns/call, last quarter', 'last ÷ first', 'RSS growth MB (peak)', 'RSS growth MB after full GC', 'heap retained MB after full GC', 'buffered/dropped', 'arrived (✓ newest, in order)', 'drain ms after connect', 'drain ms after listen'],
        rows,
      },
    ],
    summary,
    series: { buffering: series },
  };
}

module.exports = main({ file: __filename, name: 'buffering', title: 'buffering with the agent away: 1 000 000 sends, then the drain', variants, runVariant, report, rounds: ROUNDS, merge: false });
