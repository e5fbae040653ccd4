'use strict';
// Case 4: a slow agent. The stand-in reads at a fixed byte rate while the app sends faster. With the
// app ignoring send()'s return value, RSS must stay bounded (the SDK drops the oldest, and counts it)
// and send() must stay cheap; with the app honouring the return value and 'drain', nothing is dropped.
// The naive client, which buffers everything, is the baseline.

const { main } = require('../lib/harness');
const { startAgent } = require('../lib/agent');
const { cell } = require('../lib/report');
const { median, fmt } = require('../lib/stats');
const u = require('../lib/util');

const READ_BPS = 1_000_000; // the agent reads 1 MB/s, about 7 700 messages of 130 B
const SEND_RATE = 50_000; // the app offers 50 000 msg/s, about 6.5 MB/s
const SECONDS = { ignore: 10, respect: 5 };
const SAMPLE_MS = 250;

function variants(ctx) {
  const list = [];
  for (const t of ctx.transports) {
    list.push({ id: `sdk-${t}-ignore`, kind: 'sdk', transport: t, mode: 'ignore' });
    list.push({ id: `sdk-${t}-respect`, kind: 'sdk', transport: t, mode: 'respect' });
  }
  list.push({ id: 'naive-ignore', kind: 'naive', transport: 'node:net', mode: 'ignore', baseline: 'naive client, buffers everything' });
  return list;
}

async function runVariant(v, ctx, log) {
  const seconds = ctx.quick ? 3 : SECONDS[v.mode];
  const agent = await startAgent();
  const payload = u.makePayload('small');
  try {
    await agent.reset({ throttleBps: READ_BPS });
    let sdk = null;
    let client = null;
    let falseReturns = 0;
    let drains = 0;
    let dropEvents = 0;
    let blocked = false;
    let heldBack = 0;
    if (v.kind === 'sdk') {
      sdk = await u.linkedSDK(v.transport, agent.socketPath);
      sdk.on('drain', () => {
        drains++;
        blocked = false;
      });
      sdk.on('drop', () => dropEvents++);
    } else {
      client = await u.naiveClient(agent.socketPath);
    }
    const send = sdk ? (p) => sdk.send(p) : (p) => client.send(p);
    await u.sleep(100);
    if (global.gc) global.gc();
    const rss0 = u.rssMB();
    const heap0 = process.memoryUsage().heapUsed / 1048576;
    const t0 = u.now();
    const rss = [{ x: 0, y: 0 }];
    const sampler = setInterval(() => rss.push({ x: (u.now() - t0) / 1e9, y: u.rssMB() - rss0 }), SAMPLE_MS);
    // send() time and calls, per one-second window
    const windows = Array.from({ length: seconds }, () => ({ ns: 0, calls: 0 }));
    let accepted = 0;
    await u.pace(SEND_RATE, seconds, (count, first) => {
      const w = windows[Math.min(seconds - 1, Math.floor((u.now() - t0) / 1e9))];
      const s0 = u.now();
      for (let i = 0; i < count; i++) {
        if (v.mode === 'respect' && blocked) {
          heldBack += count - i;
          break;
        }
        payload.seq = first + i;
        const ok = send(payload);
        accepted++;
        w.calls++;
        if (ok === false) {
          falseReturns++;
          if (v.mode === 'respect') blocked = true;
        }
      }
      w.ns += u.now() - s0;
    });
    clearInterval(sampler);
    rss.push({ x: (u.now() - t0) / 1e9, y: u.rssMB() - rss0 });
    const duringRead = await agent.stats();
    const stats = sdk ? sdk.stats() : null;
    // What is really kept (the queue), as opposed to heap the collector has not yet given back.
    if (global.gc) global.gc();
    const heapMB = process.memoryUsage().heapUsed / 1048576 - heap0;
    const queuedMB = stats ? stats.bufferedBytes / 1048576 : NaN;

    // Let the agent read freely, then check the books: every accepted message was delivered or dropped.
    await agent.throttle(0);
    const dropped = stats ? stats.dropped.overflow : 0;
    let delivered;
    try {
      delivered = (await agent.expect(accepted - (sdk ? sdk.stats().dropped.overflow : 0), 20_000)).lines;
    } catch {
      delivered = (await agent.stats()).lines;
    }
    const final = sdk ? sdk.stats() : null;
    if (sdk) await sdk.stop();
    else await client.close();
    const readRate = duringRead.lines / seconds;
    const r = {
      seconds,
      rss,
      peakMB: Math.max(...rss.map((p) => p.y)),
      endMB: rss[rss.length - 1].y,
      halfMB: rss.find((p) => p.x >= seconds / 2)?.y ?? NaN,
      heapMB,
      queuedMB,
      nsPerCall: windows.filter((w) => w.calls).map((w) => w.ns / w.calls),
      accepted,
      heldBack,
      falseReturns,
      drains,
      dropEvents,
      droppedWhileSending: dropped,
      dropped: final ? final.dropped.overflow : 0,
      delivered,
      booksBalance: final ? delivered + final.dropped.overflow === accepted : delivered === accepted,
      readRate,
    };
    log(`${v.mode}: accepted ${accepted}${heldBack ? ` (app held back ${heldBack})` : ''}, delivered ${delivered}, dropped ${r.dropped}, send() ${fmt(median(r.nsPerCall))} ns/call, RSS growth peak ${fmt(r.peakMB)} MB, false returns ${falseReturns}, 'drain' ${drains}${r.booksBalance ? '' : ' — ACCOUNTING MISMATCH'}`);
    return r;
  } finally {
    await agent.stop();
  }
}

const label = (v) => (v.kind === 'sdk' ? `SDK, ${v.transport}, ${v.mode === 'ignore' ? 'ignores send() result' : "honours send() result and 'drain'"}` : 'naive client, ignores write() result');

function report(runs) {
  const rows = [];
  const summary = [];
  const series = [];
  for (const r of runs) {
    if (!r.results.length) continue;
    const v = r.variant;
    const x = r.results[0];
    rows.push([
      label(v),
      `${x.accepted}${x.heldBack ? ` (+${x.heldBack} held back by the app)` : ''}`,
      String(x.delivered),
      v.kind === 'sdk' ? String(x.dropped) : '–',
      cell(x.nsPerCall),
      fmt(x.peakMB),
      fmt(x.endMB - x.halfMB),
      fmt(x.heapMB),
      v.kind === 'sdk' ? fmt(x.queuedMB) : '–',
      v.kind === 'sdk' ? String(x.falseReturns) : '–',
      v.kind === 'sdk' ? String(x.drains) : '–',
      x.booksBalance ? 'yes' : 'NO',
    ]);
    series.push({ label: label(v), points: x.rss });
    if (v.kind === 'sdk') {
      if (v.mode === 'ignore') {
        summary.push({
          label: `${v.transport}, app ignores backpressure: RSS growth`,
          text: `peak ${fmt(x.peakMB)} MB, ${fmt(x.endMB - x.halfMB)} MB of it in the second half; heap kept after GC ${fmt(x.heapMB)} MB; ${x.dropped} dropped and counted; send() ${fmt(median(x.nsPerCall))} ns/call`,
          target: 'bounded: heap kept after a full GC <= 16 MB (queue bound 4 MiB), books balance',
          met: x.heapMB <= 16 && x.booksBalance,
        });
      } else {
        summary.push({ label: `${v.transport}, app honours send() and 'drain'`, text: `${x.dropped} dropped, ${x.falseReturns} false returns, ${x.drains} 'drain' events, RSS peak ${fmt(x.peakMB)} MB`, target: 'no drops, drain fires', met: x.dropped === 0 && x.drains > 0 && x.booksBalance });
      }
    } else {
      summary.push({ label: 'naive client baseline: RSS growth peak', text: `${fmt(x.peakMB)} MB, heap kept after GC ${fmt(x.heapMB)} MB (unbounded: grows for as long as the agent is slow)` });
    }
  }
  return {
    method:
      `The stand-in reads at ${fmt(READ_BPS / 1e6)} MB/s (about ${fmt(READ_BPS / 130)} msg/s); the app offers ${fmt(SEND_RATE)} msg/s of ~130 B for ${SECONDS.ignore} s when it ignores send()'s result, ${SECONDS.respect} s when it honours it (about ${fmt((SEND_RATE * 130) / 1e6)} MB/s). SDK defaults: maxQueueBytes 4 MiB, highWaterMark 1 MiB. ` +
      'send() cost is median (min–max) over one-second windows. RSS includes heap the collector has not given back yet, so the bound is judged on the heap kept after a full GC at the end of the sending. Afterwards the stand-in reads freely and the books are checked: delivered + dropped = accepted.',
    tables: [
      {
        title: 'one run per sender',
        columns: ['sender', 'accepted', 'delivered', 'dropped (counted)', 'send() ns/call', 'RSS growth peak MB', 'RSS growth in the second half MB', 'heap kept after GC MB', 'SDK queue MB', 'false returns', "'drain' events", 'books balance'],
        rows,
      },
    ],
    summary,
    series: { rss: series },
  };
}

module.exports = main({ file: __filename, name: 'slow-agent', title: 'slow agent: memory, drops and backpressure', variants, runVariant, report });
