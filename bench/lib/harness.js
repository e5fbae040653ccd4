'use strict';
// Runs one case file. Without --variant it is the orchestrator: it forks itself once per variant (and
// per process repeat), so that every trial starts from a fresh heap and JIT, collects what each child
// reports over IPC and prints the case's tables. With --variant it is that child.

const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const sdk = require('../../dist/index.js');
const { renderCaseText, wrapLine } = require('./report');

function parseArgs(argv) {
  const args = { variant: null, out: null, filter: null, round: 0, quick: process.env.BENCH_QUICK === '1' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--variant') args.variant = argv[++i];
    else if (a === '--out') args.out = argv[++i];
    else if (a === '--filter') args.filter = argv[++i];
    else if (a === '--round') args.round = Number(argv[++i]);
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
  const ctx = { transports: transports.list, quick: args.quick, round: args.round, rounds: def.rounds ?? 1 };
  const variants = def.variants(ctx);

  if (args.variant) {
    const variant = variants.find((v) => v.id === args.variant);
    if (!variant) throw new Error(`unknown variant ${args.variant}`);
    // First line of every trial process: what is being measured and over which transport.
    console.log(wrapLine(`[${def.name}/${variant.id}${ctx.rounds > 1 ? ` round ${ctx.round + 1}/${ctx.rounds}` : ''}] transport: ${variant.transport ?? 'none'}${variant.baseline ? ` (baseline: ${variant.baseline})` : ''}`, '  ', '    '));
    const result = await def.runVariant(variant, ctx, (line) => console.log(wrapLine(line, '    ', '      ')));
    if (process.send) process.send({ result });
    else console.log(JSON.stringify(result));
    return;
  }

  const started = Date.now();
  const loadStart = os.loadavg()[0];
  console.log(`== ${def.name} [transports: ${transportLine(transports)}]`);
  console.log(`   ${def.title}`);
  const selected = variants.filter((v) => !args.filter || v.id.includes(args.filter));
  // Rounds interleave the senders (round 1 of every sender, then round 2, ...) so that a noisy spell
  // on the machine lands on all of them rather than on one; each round is a fresh process.
  const rounds = def.rounds ?? 1;
  const runs = selected.map((variant) => ({ variant, results: [], error: null }));
  for (let round = 0; round < rounds; round++) {
    if (rounds > 1) console.log(`  -- round ${round + 1}/${rounds}`);
    for (const run of runs) {
      if (run.error) continue;
      try {
        run.results.push(await runChild(caseFile, run.variant, round, def.timeoutMs ?? 240_000, args.quick));
      } catch (err) {
        run.error = err.message;
        console.log(`  [${def.name}/${run.variant.id}] FAILED: ${run.error}`);
      }
    }
  }
  if (def.merge !== false) {
    for (const run of runs) if (run.results.length > 1) run.results = [mergeRounds(run.results)];
  }
  const report = def.report(runs, ctx);
  const out = {
    name: def.name,
    title: def.title,
    transports: transports.list,
    nativeError: transports.nativeError,
    seconds: (Date.now() - started) / 1000,
    load: [+loadStart.toFixed(2), +os.loadavg()[0].toFixed(2)],
    failures: runs.filter((r) => r.error).map((r) => ({ variant: r.variant.id, error: r.error })),
    ...report,
    runs: runs.map((r) => ({ variant: r.variant, results: r.results, error: r.error })),
  };
  console.log(renderCaseText(out));
  if (args.out) fs.writeFileSync(args.out, JSON.stringify(out));
  return out;
}

/** One result from several rounds: arrays at the top level are concatenated, other fields come from the first round that has them. */
function mergeRounds(results) {
  const out = {};
  for (const r of results) {
    for (const [k, v] of Object.entries(r)) {
      if (Array.isArray(v)) out[k] = (out[k] ?? []).concat(v);
      else if (out[k] === undefined || out[k] === null) out[k] = v;
    }
  }
  return out;
}

function runChild(caseFile, variant, round, timeoutMs, quick) {
  return new Promise((resolve, reject) => {
    const child = fork(caseFile, ['--variant', variant.id, '--round', String(round), ...(quick ? ['--quick'] : [])], {
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
