'use strict';
// What one lone message costs when the caches are cold, as at 100 msg/s on a board, measured per
// message rather than per slice of the clock. Before every message the script reads and writes a
// 48 MiB array (which evicts this core's caches of the sender's code and data), waits for a 1 ms
// timer, and then times, in process CPU, the send() call and the event-loop turn after it (the
// microtasks and process.nextTick callbacks it left behind), plus `--ticks` idle 1 ms timer ticks.
// The idle sender's figure (the same steps with no send) is subtracted. Senders take turns in a new
// random order every round, after `--warm` unmeasured messages each, one per event-loop turn.
// A second phase counts the bytes each sender allocates in V8's young generation per message
// (rounds of 100 messages with no garbage collection in them).
//
//   npm run build && node bench/cold-send.js [--messages N] [--ticks T] [--warm W] [sender ...]
//
// Senders: naive (node:net, one socket.write per message), js, native (when the addon loads), and
// TRANSPORT@DIR: the SDK built in another checkout (DIR/dist), for a comparison in one process,
// e.g. `js@/tmp/before` from `git worktree add /tmp/before HEAD~1` and a build there. Every
// message must reach the agent stand-in, or the script fails.

const path = require('node:path');
const v8 = require('node:v8');
const { PerformanceObserver } = require('node:perf_hooks');
const { startAgent } = require('./lib/agent');
const { median, quantile, fmt } = require('./lib/stats');
const { textTable } = require('./lib/report');
const u = require('./lib/util');

function parseArgs(argv) {
  const args = { messages: 2000, ticks: 0, warm: 20_000, senders: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--messages') args.messages = Number(argv[++i]);
    else if (a === '--ticks') args.ticks = Number(argv[++i]);
    else if (a === '--warm') args.warm = Number(argv[++i]);
    else if (a === '--help' || a === '-h') args.help = true;
    else args.senders.push(a);
  }
  for (const k of ['messages', 'ticks', 'warm']) {
    if (!Number.isInteger(args[k]) || args[k] < (k === 'messages' ? 1 : 0)) throw new Error(`--${k} takes a whole number`);
  }
  if (args.senders.length === 0) args.senders = ['naive', 'js', 'native'];
  return args;
}

const EVICT = new Uint8Array(48 << 20);
let evicted = 0;
function evictCaches() {
  for (let i = 0; i < EVICT.length; i += 64) evicted += EVICT[i]++;
}

const turn = () => new Promise(setImmediate);
const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

/** A sender by name: { name, send(i), close() }. */
async function makeSender(name, socketPath, payload) {
  if (name === 'naive') {
    const c = await u.naiveClient(socketPath);
    return {
      name,
      send: (i) => {
        payload.seq = i;
        c.send(payload);
      },
      close: c.close,
    };
  }
  const [transport, dir] = name.split('@');
  if (transport !== 'js' && transport !== 'native') throw new Error(`unknown sender ${name}: naive, js, native or TRANSPORT@DIR`);
  const SDK = dir === undefined ? undefined : require(path.resolve(dir, 'dist/index.js')).IottlySDK;
  const sdk = await u.linkedSDK(transport, socketPath, {}, SDK);
  return {
    name,
    send: (i) => {
      payload.seq = i;
      sdk.send(payload);
    },
    close: () => sdk.stop(),
  };
}

function youngUsed() {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_used_size;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    console.log('node bench/cold-send.js [--messages N] [--ticks T] [--warm W] [naive|js|native|TRANSPORT@DIR ...]');
    return;
  }
  let gcs = 0;
  const gcObserver = new PerformanceObserver((list) => {
    gcs += list.getEntries().length;
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const agent = await startAgent();
  const payload = u.makePayload('small');
  const senders = [{ name: 'idle', send: () => {}, close: async () => {} }];
  let sent = 0;
  try {
    // Made and warmed in a random order: of SDK builds in one process that otherwise cost the same,
    // the one made first was the dearest in six runs of seven, by 1 to 5 µs a message (RESULTS.md).
    const made = u.shuffled(args.senders);
    for (const name of made) senders.push(await makeSender(name, agent.socketPath, payload));
    for (const s of senders) await u.warmSender(s.send, args.warm);
    const cpu = Object.fromEntries(senders.map((s) => [s.name, []]));
    for (let k = 0; k < args.messages; k++) {
      for (const s of u.shuffled(senders)) {
        evictCaches();
        await tick();
        const c0 = process.cpuUsage();
        s.send(k);
        await turn();
        for (let t = 0; t < args.ticks; t++) await tick();
        const c = process.cpuUsage(c0);
        cpu[s.name].push(c.user + c.system);
      }
    }
    const alloc = Object.fromEntries(senders.map((s) => [s.name, []]));
    const PER_ROUND = 100;
    for (let round = 0; round < 100; round++) {
      for (const s of senders) {
        await tick();
        const g0 = gcs;
        const a0 = youngUsed();
        for (let i = 0; i < PER_ROUND; i++) {
          s.send(i);
          await turn();
        }
        const a1 = youngUsed();
        await turn();
        if (gcs === g0 && a1 >= a0) alloc[s.name].push((a1 - a0) / PER_ROUND);
      }
    }
    sent = args.warm + args.messages + 100 * PER_ROUND;
    const expected = sent * (senders.length - 1);
    await agent.expect(expected, 120_000);

    const idle = median(cpu.idle);
    const idleAlloc = median(alloc.idle);
    console.log(
      `${process.version}, ${require('node:os').cpus()[0]?.model ?? process.arch}; ${fmt(args.messages)} messages per sender, each after a cache eviction, ` +
        `timed with ${args.ticks} idle 1 ms tick(s) after it; ${fmt(args.warm)} warm-up messages each; all ${fmt(expected)} messages reached the stand-in; ` +
        `senders made and warmed in the order ${made.join(', ')}`,
    );
    // Each quantile of a sender less the same quantile of the idle windows.
    const rows = args.senders.map((name) => senders.find((s) => s.name === name)).map((s) => [
      s.name,
      ...[0.1, 0.25, 0.5, 0.75, 0.9].map((q) => fmt(quantile(cpu[s.name], q) - quantile(cpu.idle, q))),
      alloc[s.name].length ? fmt(median(alloc[s.name]) - idleAlloc) : '–',
    ]);
    const columns = ['sender', 'p10 µs', 'p25 µs', 'median µs', 'p75 µs', 'p90 µs', 'bytes allocated per message'];
    console.log(textTable({ title: 'CPU per message, each quantile net of the same quantile of the idle windows', columns, rows }));
    console.log(`idle: median ${fmt(idle)} µs per window, ${fmt(idleAlloc)} bytes per turn (subtracted above)`);
  } finally {
    gcObserver.disconnect();
    for (const s of senders) await s.close();
    await agent.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
