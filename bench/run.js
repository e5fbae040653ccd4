#!/usr/bin/env node
'use strict';
// `npm run bench [-- CASE ...] [--quick] [--publish]`: runs each case in its own child process,
// prints the tables, and writes bench/results/latest.json, latest.md and chart.svg.
// --publish also copies the chart to bench/RESULTS.svg (the copy committed beside RESULTS.md).
// `npm run bench -- --help` lists the cases, what each measures and how long it takes.

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ORDER = ['burst', 'paced', 'low-rate', 'buffering', 'slow-agent', 'commands', 'blocked'];
const RESULTS_DIR = path.join(__dirname, 'results');
// Cases other issues add to bench/cases/ run after these, in name order.
const CASES = [
  ...ORDER,
  ...fs
    .readdirSync(path.join(__dirname, 'cases'))
    .filter((f) => f.endsWith('.js'))
    .map((f) => f.slice(0, -3))
    .filter((c) => !ORDER.includes(c))
    .sort(),
].filter((c) => fs.existsSync(path.join(__dirname, 'cases', `${c}.js`)));

/**
 * What each case measures, and roughly how long it takes on 2 x86-64 cores with both transports
 * (full run, --quick run), in seconds. Full: the committed run of bench/RESULTS.md, scaled by the
 * variants or rates added since (paced 3 -> 4 rates) and, for reconnect and for burst since its
 * longer warm-up (0447097), measured alone; --quick: each case run alone with --quick.
 */
const ABOUT = {
  burst: ['send() bursts until the last frame reaches the agent: msg/s, MB/s, CPU per message, beside a naive node:net client, hand-batched writes, JSON.stringify alone and pre-serialised 1 MiB writes', 287, 114],
  paced: ['sustained sending at 100 to 100 000 msg/s: CPU per message and event-loop delay, beside a naive client and an idle pacer', 110, 57],
  'low-rate': ['one message per timer tick at 100 and 1 000 msg/s: CPU per message of each transport and a naive client, interleaved in one process', 290, 85],
  buffering: ['the agent away: the cost of 1 000 000 send() calls over time, memory, then the drain of the newest maxBufferedMsgs', 38, 13],
  'slow-agent': ['an agent reading 1 MB/s while the app sends 50 000 msg/s: memory, drops, send() cost, with and without backpressure', 43, 17],
  commands: ['commands from the agent: dispatch rate, and latency idle and under send load, beside a naive client', 48, 26],
  blocked: ['a main thread blocked for 200 ms: how many accepted messages reach the agent before, during and after', 14, 12],
  reconnect: ['the agent goes away and comes back: latency from its listen() to the hello, attempts while away, beside the SDK polling', 83, 28],
};

function usage() {
  const { wrapLine } = require('./lib/report');
  const minutes = (s) => (s >= 90 ? `${(s / 60).toFixed(1).replace(/\.0$/, '')} min` : `${s} s`);
  const nameW = Math.max(...CASES.map((c) => c.length));
  const lines = [
    'usage: npm run bench -- [CASE ...] [--quick] [--publish]',
    '',
    wrapLine(
      'Runs the named cases (all of them, in the order below, when none is named), each in its own child process, for each ' +
        'transport that loads here (js always, native when the addon loads) and beside its baselines. Prints the tables ' +
        'and a summary against the targets, and writes bench/results/latest.json, latest.md and chart.svg (not committed).',
      '',
      '',
      100,
    ),
    '',
    `  ${'case'.padEnd(nameW)}  ${'full'.padEnd(10)}${'--quick'.padEnd(10)}what it measures`,
  ];
  let full = 0;
  let quick = 0;
  for (const c of CASES) {
    const [what, f, q] = ABOUT[c] ?? [`see bench/cases/${c}.js`, null, null];
    full += f ?? 0;
    quick += q ?? 0;
    const head = `  ${c.padEnd(nameW)}  ${(f ? '~' + minutes(f) : '?').padEnd(10)}${(q ? '~' + minutes(q) : '?').padEnd(10)}`;
    lines.push(wrapLine(what, head, ' '.repeat(head.length), 120));
  }
  lines.push(`  ${'all'.padEnd(nameW)}  ${('~' + minutes(full)).padEnd(10)}${('~' + minutes(quick)).padEnd(10)}(more under load)`);
  lines.push(
    '',
    'options:',
    '  --quick      shorter runs (fewer messages, shorter phases; as many rounds): to try a change, not for figures',
    '               anyone quotes',
    '  --publish    also copy the chart to bench/RESULTS.svg, the copy committed beside bench/RESULTS.md: for a full',
    '               run on a quiet machine, after which RESULTS.md is updated by hand',
    '  -h, --help   this text',
    '',
    wrapLine(
      'Times are for 2 x86-64 cores with both transports and grow with the load; a board is slower, and with the js ' +
        'transport alone a case has fewer senders. One case alone, or some of its senders: node bench/cases/CASE.js ' +
        '[--quick] [--filter PART-OF-AN-ID]. More in bench/README.md and bench/RESULTS.md.',
      '',
      '',
      100,
    ),
  );
  console.log(lines.join('\n'));
}

function machine() {
  let commit = null;
  let dirty = false;
  try {
    const root = path.join(__dirname, '..');
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'native'], { cwd: root, encoding: 'utf8' }).trim() !== '';
  } catch {}
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    memGB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    loadavg: os.loadavg().map((x) => +x.toFixed(2)),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    commit,
    srcDirty: dirty,
  };
}

function runCaseProcess(name, extra) {
  const out = path.join(os.tmpdir(), `iottly-bench-${process.pid}-${name}.json`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'cases', `${name}.js`), '--out', out, ...extra], { stdio: 'inherit' });
    child.on('exit', (code, signal) => {
      let result = null;
      try {
        result = JSON.parse(fs.readFileSync(out, 'utf8'));
        fs.rmSync(out, { force: true });
      } catch {}
      if (!result) {
        result = { name, title: name, failures: [{ variant: '(whole case)', error: `exited ${signal ?? code} without results` }], tables: [], summary: [], transports: [], seconds: 0 };
      }
      resolve(result);
    });
  });
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.includes('-h') || argv.includes('--help')) return usage();
  for (const a of argv.filter((x) => x.startsWith('-'))) {
    if (a !== '--quick' && a !== '--publish') {
      console.error(`unknown option '${a}' (npm run bench -- --help lists them)`);
      process.exit(2);
    }
  }
  const picked = argv.filter((a) => !a.startsWith('-'));
  for (const p of picked) {
    if (!CASES.includes(p)) {
      console.error(`unknown case '${p}' (cases: ${CASES.join(', ')}; npm run bench -- --help says what each measures)`);
      process.exit(2);
    }
  }
  const extra = argv.includes('--quick') ? ['--quick'] : [];
  const { availableTransports, transportLine } = require('./lib/harness');
  const { renderCaseMarkdown, wrapLine } = require('./lib/report');
  const { buildChart } = require('./lib/chart');

  const m = machine();
  const transports = availableTransports();
  console.log(`iottly-sdk benchmarks: ${m.cpu} × ${m.cores}, ${m.memGB} GB, ${m.os}, Node ${m.node}`);
  console.log(`transports: ${transportLine(transports)}`);
  console.log(`load average at start: ${m.loadavg.join(' ')}${extra.length ? '  (--quick: shorter runs, not for publishing)' : ''}\n`);

  const started = Date.now();
  const cases = [];
  for (const name of picked.length ? CASES.filter((c) => picked.includes(c)) : CASES) {
    cases.push(await runCaseProcess(name, extra));
    console.log('');
  }
  const results = {
    machine: m,
    transports: transports.list,
    nativeError: transports.nativeError,
    quick: extra.length > 0,
    seconds: Math.round((Date.now() - started) / 1000),
    cases,
  };

  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(path.join(RESULTS_DIR, 'latest.json'), JSON.stringify(results, null, 1));
  fs.writeFileSync(path.join(RESULTS_DIR, 'latest.md'), markdown(results, renderCaseMarkdown));
  const svg = buildChart(results);
  fs.writeFileSync(path.join(RESULTS_DIR, 'chart.svg'), svg);
  if (argv.includes('--publish')) fs.writeFileSync(path.join(__dirname, 'RESULTS.svg'), svg);

  console.log('== summary against baselines and targets');
  for (const c of cases) {
    for (const s of c.summary || []) {
      const verdict = s.met === undefined ? '' : s.met ? '  met' : '  MISSED';
      console.log(wrapLine(`${c.name}: ${s.label}: ${s.text}${s.target ? ` (target ${s.target})` : ''}${verdict}`, '   ', '     '));
    }
    for (const f of c.failures || []) console.log(wrapLine(`${c.name}: FAILED ${f.variant}: ${f.error}`, '   ', '     '));
  }
  console.log(`\nwrote bench/results/latest.json, latest.md, chart.svg${argv.includes('--publish') ? ' and bench/RESULTS.svg' : ''} (${results.seconds} s in all)`);
}

function markdown(r, renderCase) {
  const m = r.machine;
  const lines = [
    '## Run',
    '',
    `- Machine: ${m.cpu} × ${m.cores} cores, ${m.memGB} GB RAM, ${m.os}; load average at start ${m.loadavg.join(' ')}`,
    `- Node ${m.node} (V8 ${m.v8}); commit ${m.commit ?? 'unknown'}${m.srcDirty ? ' (src/ or native/ had uncommitted changes, which dist/ and the addon may include)' : ''}; ${m.date}`,
    `- Transports: ${r.nativeError ? `js only — the native transport was not available (\`${r.nativeError}\`)` : r.transports.join(', ')}`,
    `- Whole run: ${r.seconds} s${r.quick ? ' (--quick: shortened runs)' : ''}`,
    '',
    '## Summary against baselines and targets',
    '',
  ];
  for (const c of r.cases) {
    for (const s of c.summary || []) {
      const verdict = s.met === undefined ? '' : s.met ? ' — **met**' : ' — **MISSED**';
      lines.push(`- ${c.name}: ${s.label}: ${s.text}${s.target ? ` (target ${s.target})` : ''}${verdict}`);
    }
  }
  lines.push('', '## Cases', '');
  for (const c of r.cases) lines.push(renderCase(c));
  return lines.join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
