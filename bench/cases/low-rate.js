'use strict';
// Case: what one message costs at the rates boards send (100 and 1 000 msg/s, one message per timer
// tick), for each transport beside the naive client. At these rates a message costs a few µs of
// work and tens of µs of cold caches, and the pacing timer costs more than the message, so separate
// processes measured one after another differ by more than the senders do (paced.js's 100 msg/s row).
// Here every sender lives in one process, connected to one stand-in agent, and the clock is cut into
// short slices: each slice paces one sender (or none, the idle pacer), in a new random order every
// cycle, so that the machine's drift lands on all of them alike. A sender's cost is the median of
// its slices' CPU per message, less the idle slices' median; the verdict compares the two in each
// round (a fresh process) and takes the median of those ratios. Every sender is warmed first with
// WARM_MSGS messages: a board's steady state is what is measured, not the JIT's first seconds.

const { main } = require('../lib/harness');
const { startAgent } = require('../lib/agent');
const { cell } = require('../lib/report');
const { median, fmt } = require('../lib/stats');
const u = require('../lib/util');

const RATES = [100, 1_000];
/** Slice length per rate: long enough for 50 messages at 100/s, short enough for many slices. */
const SLICE_MS = { 100: 500, 1_000: 200 };
/** Seconds of slices per rate: 100 msg/s needs the longer run, its slices holding 50 messages. */
const SECONDS = { full: { 100: 60, 1_000: 30 }, quick: { 100: 15, 1_000: 8 } };
const ROUNDS = 3;
/**
 * Messages each sender sends before anything is measured, one per event-loop turn (as a tick sends
 * it, but without waiting for a timer). A board sends for hours; the question is what a message costs
 * then, not while V8 is still compiling the code that sends it. After a single uncounted cycle, every
 * sender's slices cost more in the first quarter of a 40 s run at 1 000 msg/s than in the rest
 * (bench/RESULTS.md), and V8 was still optimising the senders' code thousands of messages in.
 */
const WARM_MSGS = 20_000;

function variants() {
  return [{ id: 'interleaved', kind: 'interleaved', transport: 'all, in one process', baseline: 'naive client and idle pacer in the same process' }];
}

/** Paces `send` at `rate` for `ms`; resolves with [messages sent, process CPU µs spent]. */
function slice(send, rate, ms) {
  return new Promise((resolve) => {
    const total = Math.round((rate * ms) / 1000);
    const c0 = u.cpuUs();
    const t0 = u.now();
    let sent = 0;
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((u.now() - t0) / 1e9) * rate));
      while (sent < due) send(sent++);
      if (sent >= total) {
        clearInterval(timer);
        resolve([sent, u.cpuUs() - c0]);
      }
    }, 1);
  });
}

async function runVariant(v, ctx, log) {
  const agent = await startAgent();
  const payload = u.makePayload('small');
  const senders = [{ name: 'idle', send: () => {} }];
  const closers = [];
  try {
    const naive = await u.naiveClient(agent.socketPath);
    closers.push(naive.close);
    senders.push({
      name: 'naive',
      send: (i) => {
        payload.seq = i;
        naive.send(payload);
      },
    });
    for (const t of ctx.transports) {
      const sdk = await u.linkedSDK(t, agent.socketPath);
      closers.push(() => sdk.stop());
      senders.push({
        name: t,
        send: (i) => {
          payload.seq = i;
          sdk.send(payload);
        },
      });
    }
    for (const s of senders) await u.warmSender(s.send, WARM_MSGS);
    const trials = [];
    for (const rate of RATES) {
      const ms = SLICE_MS[rate];
      // One cycle of every sender at this rate first, not counted: it warms the timer's path too.
      for (const s of senders) await slice(s.send, rate, ms);
      const perMsg = Object.fromEntries(senders.map((s) => [s.name, []]));
      const deadline = Date.now() + (ctx.quick ? SECONDS.quick : SECONDS.full)[rate] * 1000;
      while (Date.now() < deadline) {
        const order = u.shuffled(senders);
        for (const s of order) {
          const [sent, cpu] = await slice(s.send, rate, ms);
          perMsg[s.name].push(cpu / sent);
        }
      }
      const idle = median(perMsg.idle);
      const net = Object.fromEntries(senders.map((s) => [s.name, median(perMsg[s.name]) - idle]));
      trials.push({ rate, slices: perMsg.idle.length, idleUs: idle, netUs: net });
      log(`${fmt(rate)}/s, ${perMsg.idle.length} slices each: idle pacer ${fmt(idle)} µs per tick; net per message ${senders.slice(1).map((s) => `${s.name} ${fmt(net[s.name])} µs`).join(', ')}`);
    }
    await agent.reset();
    return { trials };
  } finally {
    for (const close of closers) await close();
    await agent.stop();
  }
}

function report(runs, ctx) {
  const run = runs.find((r) => r.results.length);
  if (!run) return { method: '', tables: [], summary: [] };
  const trials = run.results[0].trials;
  const names = ['naive', ...ctx.transports];
  const rows = [];
  const summary = [];
  for (const rate of RATES) {
    const ts = trials.filter((t) => t.rate === rate);
    for (const name of names) {
      const net = ts.map((t) => t.netUs[name]);
      const ratio = ts.map((t) => t.netUs.naive / t.netUs[name]);
      rows.push([fmt(rate), name === 'naive' ? 'naive node:net client' : `SDK, ${name}`, cell(net), name === 'naive' ? '–' : cell(ratio), cell(ts.map((t) => t.idleUs)), String(ts[0]?.slices ?? 0)]);
    }
    for (const t of ctx.transports) {
      const ratios = ts.map((x) => x.netUs.naive / x.netUs[t]);
      if (ratios.length === 0 || !ratios.every(Number.isFinite)) continue;
      const m = median(ratios);
      summary.push({
        label: `${fmt(rate)}/s, one message per tick: CPU per message net of the pacer, naive client ÷ SDK ${t}`,
        text: `${m.toFixed(2)}x (per-round ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}; SDK ${fmt(median(ts.map((x) => x.netUs[t])))} µs, naive ${fmt(median(ts.map((x) => x.netUs.naive)))} µs)${m < 1 ? ' (the SDK costs more)' : ''}`,
        target: '>= 1.0x',
        met: m >= 1,
      });
    }
  }
  return {
    method:
      `Every sender in one process, linked to one stand-in agent: the naive client and an SDK per transport, beside an idle pacer. The clock is cut into slices (${SLICE_MS[100]} ms at 100 msg/s, ${SLICE_MS[1_000]} ms at 1 000 msg/s); each slice paces one of them from a 1 ms timer, in a new random order every cycle (every order equally likely), for ${SECONDS.full[100]} s at 100 msg/s and ${SECONDS.full[1_000]} s at 1 000 msg/s (${SECONDS.quick[100]} and ${SECONDS.quick[1_000]} s with --quick), after one uncounted cycle. ` +
      `Before any of it, each sender sends ${fmt(WARM_MSGS)} messages, one per event-loop turn, so that what is measured is the steady state of a board that has been sending for a while, not V8 compiling the senders' code. ` +
      `A sender's CPU per message is the median over its slices of process CPU (user + system) divided by messages; "net" subtracts the idle slices' median (what the timer costs by itself). ${ROUNDS} rounds, each a fresh process; the verdict is the median of the per-round ratios naive ÷ SDK, with their range.`,
    tables: [
      {
        title: `median (min–max) of ${ROUNDS} rounds`,
        columns: ['msg/s', 'sender', 'CPU µs/msg net of pacer', 'naive ÷ SDK', 'idle pacer µs/tick', 'slices per sender'],
        rows,
      },
    ],
    summary,
  };
}

module.exports = main({ file: __filename, name: 'low-rate', title: 'one message per timer tick at 100 and 1 000 msg/s: CPU per message, senders interleaved in one process', variants, runVariant, report, rounds: ROUNDS, timeoutMs: 240_000 });
