#!/usr/bin/env node
'use strict';
// `npm run bench [-- CASE ...] [--quick] [--publish]`: runs each case in its own child process,
// prints the tables, and writes bench/results/latest.json, latest.md and chart.svg.
// --publish also copies the chart to bench/RESULTS.svg (the copy committed beside RESULTS.md).

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ORDER = ['burst', 'paced', 'buffering', 'slow-agent', 'commands', 'blocked'];
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

function usage() {
  console.log(`usage: npm run bench [-- [CASE ...] [--quick] [--publish]]\ncases: ${CASES.join(', ')}`);
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
  const picked = argv.filter((a) => !a.startsWith('--'));
  for (const p of picked) {
    if (!CASES.includes(p)) {
      console.error(`unknown case '${p}'`);
      usage();
      process.exit(2);
    }
  }
  const extra = argv.includes('--quick') ? ['--quick'] : [];
  const { availableTransports, transportLine } = require('./lib/harness');
  const { renderCaseMarkdown } = require('./lib/report');
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
      console.log(`   ${c.name}: ${s.label}: ${s.text}${s.target ? ` (target ${s.target})` : ''}${verdict}`);
    }
    for (const f of c.failures || []) console.log(`   ${c.name}: FAILED ${f.variant}: ${f.error}`);
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
