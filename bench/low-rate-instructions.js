'use strict';
// What one lone message costs in instructions on the main thread, counted by valgrind's callgrind:
// the low-rate case's question (one message per timer tick) without its noise. At 100 or 1 000
// msg/s, a message's CPU time is mostly cold caches and the kernel, and it moves between runs by
// more than the senders differ; the instructions a sender executes do not move.
//
//   npm run build && node bench/low-rate-instructions.js [--ticks N] [--warm N] [sender ...]
//
// Senders: idle (the 1 ms timer alone), naive (node:net, one socket.write per message), js, native
// (when the addon loads). Each runs in its own process under callgrind twice, with the same warm-up
// and `ticks` or 4 x `ticks` measured ticks; the difference of the two counts is the cost of
// 3 x `ticks` ticks, with start-up, warm-up and shutdown cancelled out. A sender's figure is that
// per tick less the idle pacer's, split by what the function does. System calls are the same for
// every sender (one write(2) per message) and callgrind does not see the kernel; the other threads
// (V8's compiler and GC helpers, the addon's I/O thread) are reported as one total.
// Needs valgrind (`apt-get install valgrind`). About 20 s a run on 2 x86-64 cores.

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const sdk = require('../dist/index.js');
const { textTable } = require('./lib/report');

function parseArgs(argv) {
  const args = { ticks: 1000, warm: 3000, senders: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--ticks') args.ticks = Number(argv[++i]);
    else if (a === '--warm') args.warm = Number(argv[++i]);
    else if (a === '--help' || a === '-h') args.help = true;
    else args.senders.push(a);
  }
  if (!(args.ticks > 0) || !(args.warm >= 0)) throw new Error('--ticks and --warm take a number');
  return args;
}

/** What a function of the main thread does, from its callgrind name. */
const CATEGORIES = [
  ['JSON.stringify', /JsonStringifier|FastDtoa|DoubleToCString|IntToCString/],
  ['garbage collection', /Heap|Scaveng|Marking|Sweep|Evacuat|RememberedSet|MemoryAllocator|GCTracer|MemoryChunk/],
  ['optimised JavaScript (JIT code)', /^\?\?\?:0x[0-9a-f]+ \[\?\?\?\]$/],
  ['V8 builtins (inline caches, interpreter, calls, promises)', /^\?\?\?:Builtins_/],
  ['the addon', /iottly_native/],
  ['V8 runtime and API', /v8::|Runtime_/],
  ['Node C++ (stream handles, callbacks)', /node::/],
  ['libuv', /\buv_|uv__/],
  ['libc (malloc, system call wrappers)', /libc\.so|ld-linux/],
];
const OTHER = 'other';

function category(name) {
  for (const [label, re] of CATEGORIES) if (re.test(name)) return label;
  return OTHER;
}

/** Instructions by category in one callgrind output file. */
function byCategory(file) {
  const text = execFileSync('callgrind_annotate', ['--threshold=100', file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const out = {};
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (!m) continue;
    const n = Number(m[1].replaceAll(',', ''));
    if (m[2].includes('PROGRAM TOTALS')) {
      total = n;
      continue;
    }
    const c = category(m[2].trim());
    out[c] = (out[c] ?? 0) + n;
  }
  return { total, out };
}

/** One run of `sender` under callgrind with `ticks` measured ticks: main thread by category, other threads' total. */
function run(sender, ticks, warm, dir) {
  const base = path.join(dir, `${sender}.${ticks}`);
  const child = path.join(__dirname, 'lib', 'tick-sender.js');
  const r = spawnSync(
    'valgrind',
    ['--tool=callgrind', '--separate-threads=yes', '--smc-check=all-non-file', `--callgrind-out-file=${base}`, process.execPath, child, sender, String(ticks), String(warm)],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0) throw new Error(`${sender} under callgrind exited ${r.status}:\n${r.stderr.split('\n').slice(-15).join('\n')}`);
  const said = JSON.parse(r.stdout.trim().split('\n').pop());
  if (sender !== 'idle' && said.delivered !== ticks + warm) throw new Error(`${sender}: ${said.delivered} of ${ticks + warm} messages reached the agent`);
  // --separate-threads writes base-01 (the main thread), base-02, ...
  const files = fs.readdirSync(dir).filter((f) => f.startsWith(`${path.basename(base)}-`)).sort();
  const main = byCategory(path.join(dir, files[0]));
  let others = 0;
  for (const f of files.slice(1)) others += byCategory(path.join(dir, f)).total;
  return { main, others };
}

/** Per-tick instructions of `sender`: the difference of a run with 4 x ticks and one with ticks. */
function perTick(sender, args, dir) {
  const short = run(sender, args.ticks, args.warm, dir);
  const long = run(sender, 4 * args.ticks, args.warm, dir);
  const n = 3 * args.ticks;
  const cats = {};
  for (const c of new Set([...Object.keys(short.main.out), ...Object.keys(long.main.out)])) {
    cats[c] = ((long.main.out[c] ?? 0) - (short.main.out[c] ?? 0)) / n;
  }
  return { main: (long.main.total - short.main.total) / n, cats, others: (long.others - short.others) / n };
}

const fmtK = (x) => `${(x / 1000).toFixed(1)}k`;

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    console.log('node bench/low-rate-instructions.js [--ticks N] [--warm N] [idle|naive|js|native ...]');
    return;
  }
  const which = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
  if (which.status !== 0) throw new Error('valgrind is not installed (apt-get install valgrind)');
  const senders = args.senders.length ? args.senders : ['naive', 'js', ...(sdk.nativeAvailable() ? ['native'] : [])];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iottly-instructions-'));
  try {
    console.log(`${which.stdout.trim()}, Node ${process.version}, ${os.cpus()[0]?.model ?? os.arch()}; ${args.warm} warm-up ticks, then ${args.ticks} and ${4 * args.ticks} measured`);
    const idle = perTick('idle', args, dir);
    const results = {};
    for (const s of senders) {
      const t0 = Date.now();
      results[s] = perTick(s, args, dir);
      console.log(`  ${s}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
    const labels = [...CATEGORIES.map(([l]) => l), OTHER];
    const net = (s, c) => (results[s].cats[c] ?? 0) - (idle.cats[c] ?? 0);
    const rows = labels
      .filter((c) => senders.some((s) => Math.abs(net(s, c)) >= 50))
      .map((c) => [c, ...senders.map((s) => fmtK(net(s, c)))]);
    rows.push(['main thread, net of the idle pacer', ...senders.map((s) => fmtK(results[s].main - idle.main))]);
    if (results.naive) {
      rows.push(['naive ÷ sender (main thread)', ...senders.map((s) => ((results.naive.main - idle.main) / (results[s].main - idle.main)).toFixed(2))]);
    }
    rows.push(['other threads, net of the idle pacer', ...senders.map((s) => fmtK(results[s].others - idle.others))]);
    console.log(
      textTable({
        title: `instructions per message, one message per 1 ms tick (idle pacer: ${fmtK(idle.main)} per tick on the main thread)`,
        columns: ['what', ...senders],
        keys: 1,
        rows,
      }),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
