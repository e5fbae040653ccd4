'use strict';
// The long run of the agent-churn fault injection (test/reliability-churn.test.mjs is its CI size):
//   npm run soak -- --minutes 30 [--transport js|native] [--rate 2000] [--out file.json]
// For each transport in turn (the time is split between them), one SDK sends numbered messages at a
// steady rate while its agent, a real process, is SIGKILLed or restarted gracefully (3 to 1, random
// order) every 200-400 ms. Every agent's log is checked as in the test (order, duplicates, gaps
// charged to counted drops or to a dead socket buffer). The process's RSS, JS heap, fds and threads
// are sampled every minute. Prints the figures, writes them as JSON, exits 1 on any problem.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

function parseArgs(argv) {
  const args = { minutes: 10, transport: null, rate: 2000, out: null };
  for (let i = 0; i < argv.length; i++) {
    const [key, inline] = argv[i].split('=');
    const value = () => inline ?? argv[++i];
    if (key === '--minutes') args.minutes = Number(value());
    else if (key === '--transport') args.transport = value();
    else if (key === '--rate') args.rate = Number(value());
    else if (key === '--out') args.out = value();
    else throw new Error(`unknown argument ${argv[i]} (use --minutes N [--transport js|native] [--rate R] [--out file])`);
  }
  if (!(args.minutes > 0)) throw new Error('--minutes must be a positive number');
  return args;
}

const mib = (n) => Math.round((n / 1048576) * 10) / 10;
const count = (dir) => fs.readdirSync(dir).length;
function sample(t0) {
  global.gc?.();
  const m = process.memoryUsage();
  return { minute: Math.round((Date.now() - t0) / 6000) / 10, rssMiB: mib(m.rss), heapMiB: mib(m.heapUsed), fds: count('/proc/self/fd'), threads: count('/proc/self/task') };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const root = path.join(__dirname, '..');
  const sdk = require(path.join(root, 'dist', 'index.js'));
  const { runChurn, summarise } = await import(pathToFileURL(path.join(root, 'test', 'fixtures', 'rel-churn.mjs')).href);
  const list = args.transport ? [args.transport] : sdk.nativeAvailable() ? ['js', 'native'] : ['js'];
  if (!sdk.nativeAvailable()) process.stdout.write(`soak: the native addon does not load (${sdk.nativeLoadError()?.message}); js only\n`);
  const report = { started: new Date().toISOString(), minutes: args.minutes, rate: args.rate, host: { cpus: os.cpus().length, node: process.version }, runs: [] };
  let failed = false;
  for (const transport of list) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iottly-soak-'));
    const t0 = Date.now();
    const until = t0 + (args.minutes * 60_000) / list.length;
    // Enough kinds for any run; `until` ends it.
    const restarts = Array.from({ length: 1_000_000 }, () => (Math.random() < 0.75 ? 'kill' : 'graceful'));
    const samples = [sample(t0)];
    let nextSample = t0 + 60_000;
    process.stdout.write(`soak: ${transport} for ${((until - t0) / 60_000).toFixed(1)} min at ${args.rate} msg/s\n`);
    try {
      const r = await runChurn({
        sdk,
        transport,
        dir,
        restarts,
        until,
        rate: args.rate,
        deadlineMs: 30_000,
        onProgress: (n) => {
          if (Date.now() < nextSample) return;
          nextSample += 60_000;
          const s = sample(t0);
          samples.push(s);
          process.stdout.write(`soak: ${transport} minute ${s.minute}: ${n} restarts, RSS ${s.rssMiB} MiB, heap ${s.heapMiB} MiB, fds ${s.fds}, threads ${s.threads}\n`);
        },
      });
      samples.push(sample(t0));
      const summary = summarise(r);
      report.runs.push({ ...summary, minutes: (Date.now() - t0) / 60_000, stats: r.stats, problems: r.problems, samples });
      process.stdout.write(`soak: ${transport}: ${JSON.stringify(summary)}\n`);
      for (const p of r.problems) process.stdout.write(`soak: ${transport}: PROBLEM ${p}\n`);
      if (r.problems.length > 0) failed = true;
    } catch (err) {
      failed = true;
      report.runs.push({ transport, error: String(err.stack ?? err), samples });
      process.stdout.write(`soak: ${transport}: ERROR ${err.stack ?? err}\n`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  report.finished = new Date().toISOString();
  const out = args.out ?? path.join(root, 'build', 'soak', `soak-${report.started.replace(/[:.]/g, '-')}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`soak: ${failed ? 'FAILED' : 'ok'}; figures in ${path.relative(process.cwd(), out)}\n`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((err) => {
  process.stderr.write(`soak: ${err.stack ?? err}\n`);
  process.exitCode = 2;
});
