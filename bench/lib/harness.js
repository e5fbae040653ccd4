'use strict';
// Runs one case file. Without --variant it is the orchestrator: it forks itself once per variant (and
// per process repeat), so that every trial starts from a fresh heap and JIT, collects what each child
// reports over IPC and prints the case's tables. With --variant it is that child.

const { fork } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const sdk = require('../../dist/index.js');
const { renderCaseText } = require('./report');

function parseArgs(argv) {
  const args = { variant: null, out: null, filter: null, quick: process.env.BENCH_QUICK === '1' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--variant') args.variant = argv[++i];
    else if (a === '--out') args.out = argv[++i];
    else if (a === '--filter') args.filter = argv[++i];
    else if (a === '--quick') args.quick = true;
  }
  return args;
}

/** Transports this process can use: JS always, native once the addon loads. */
function availableTransports() {
  const native = sdk.nativeAvailable();
  const err = native ? null : sdk.nativeLoadError();
  return {
    list: native ? ['js', 'native'] : ['js'],
    nativeError: err ? String(err.message).split('\n')[0] : null,
  };
}

function transportLine(t) {
  return t.nativeError ? `js (native not available: ${t.nativeError})` : t.list.join(', ');
}

async function runCase(def, argv = process.argv.slice(2), caseFile = require.main.filename) {
  const args = parseArgs(argv);
  const transports = availableTransports();
  const ctx = { transports: transports.list, quick: args.quick };
  const variants = def.variants(ctx);

  if (args.variant) {
    const variant = variants.find((v) => v.id === args.variant);
    if (!variant) throw new Error(`unknown variant ${args.variant}`);
    // First line of every trial process: what is being measured and over which transport.
    console.log(`  [${def.name}/${variant.id}] transport: ${variant.transport ?? 'none'}${variant.baseline ? ` (baseline: ${variant.baseline})` : ''}`);
    const result = await def.runVariant(variant, ctx, (line) => console.log(`    ${line}`));
    if (process.send) process.send({ result });
    else console.log(JSON.stringify(result));
    return;
  }

  const started = Date.now();
  console.log(`== ${def.name}: ${def.title}`);
  console.log(`   transports: ${transportLine(transports)}`);
  const runs = [];
  const selected = variants.filter((v) => !args.filter || v.id.includes(args.filter));
  for (const variant of selected) {
    const processes = variant.processes ?? def.processes ?? 1;
    const results = [];
    let error = null;
    for (let p = 0; p < processes && !error; p++) {
      try {
        results.push(await runChild(caseFile, variant, def.timeoutMs ?? 240_000));
      } catch (err) {
        error = err.message;
        console.log(`  [${def.name}/${variant.id}] FAILED: ${error}`);
      }
    }
    runs.push({ variant, results, error });
  }
  const report = def.report(runs, ctx);
  const out = {
    name: def.name,
    title: def.title,
    transports: transports.list,
    nativeError: transports.nativeError,
    seconds: (Date.now() - started) / 1000,
    failures: runs.filter((r) => r.error).map((r) => ({ variant: r.variant.id, error: r.error })),
    ...report,
    runs: runs.map((r) => ({ variant: r.variant, results: r.results, error: r.error })),
  };
  console.log(renderCaseText(out));
  if (args.out) fs.writeFileSync(args.out, JSON.stringify(out));
  return out;
}

function runChild(caseFile, variant, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = fork(caseFile, ['--variant', variant.id, ...(process.argv.includes('--quick') ? ['--quick'] : [])], {
      execPath: process.execPath,
      execArgv: ['--expose-gc', ...(variant.execArgv ?? [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result = null;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on('message', (m) => {
      if (m && m.result) result = m.result;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (result) resolve(result);
      else reject(new Error(`trial process exited (${signal ?? code}) without a result`));
    });
  });
}

/** Entry point for a case file: `main(def)` at the bottom of bench/cases/X.js. */
function main(def) {
  if (require.main && require.main.filename === path.resolve(def.file)) {
    runCase(def).then(
      () => {
        if (!process.send || !process.argv.includes('--variant')) process.exitCode = 0;
        // The trial's agent and SDK are closed; anything still open is a leak we do not wait for.
        if (process.argv.includes('--variant')) setImmediate(() => process.exit(0));
      },
      (err) => {
        console.error(err && err.stack ? err.stack : err);
        process.exit(1);
      },
    );
  }
  return def;
}

module.exports = { main, runCase, availableTransports, transportLine };
