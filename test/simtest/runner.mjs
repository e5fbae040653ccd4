// Runs the simulation: fast-check generates a configuration and a command sequence, runs it with
// fc.asyncModelRun against a fresh World (one SDK, one scripted agent), checks the end-of-sequence
// invariants, and on failure shrinks and reports the seed, the path and the shrunk sequence in the
// form replay() takes, ready to paste into a regression test.
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Start, Subscribe, commandArbitraries, commandFrom, initialModel, planted } from './commands.mjs';
import { InvariantError, checkEnd, checkNoLeak, checkStopped, waitFor } from './invariants.mjs';
import { World, installProcessHooks, processState } from './world.mjs';

const require = createRequire(import.meta.url);

/** The SDK under test: this checkout's dist/, or IOTTLY_SIMTEST_DIST (another build, e.g. an older commit's). */
export function loadSdk() {
  return require(process.env.IOTTLY_SIMTEST_DIST ? join(process.env.IOTTLY_SIMTEST_DIST, 'index.js') : '../../dist/index.js');
}

/** The configuration of one sequence (drawn by fast-check too, so it shrinks and replays). */
export const configArbitrary = fc.record({
  backend: fc.oneof({ weight: 7, arbitrary: fc.constant('inproc') }, { weight: 1, arbitrary: fc.constant('child') }),
  maxBufferedMsgs: fc.constantFrom(0, 1, 5, 10, 50),
  /** start() before the first command (most sequences; the others start when a command says so). */
  /** The version the agent announces in its sdkinit on each connection (null: an agent older than 1.8.0, none). */
  agentVersion: fc.constantFrom('1.8.0', '1.9.3', '1.7.9', null),
  /** Subscriptions made before the first command. */
  subs: fc.uniqueArray(
    fc.record({
      cmdType: fc.constantFrom('c0', 'c1'),
      kind: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('return', 'throw', 'reject', 'slow') }, { weight: 1, arbitrary: fc.constantFrom('w-ok', 'w-reply', 'w-fail', 'w-slow') }),
      ordered: fc.boolean(),
    }),
    { maxLength: 2, selector: (s) => s.cmdType },
  ),
  autoStart: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});

const SEQUENCE_DEADLINE_MS = 30_000;

/** Run one sequence (`cmds`: an iterable of commands) against a fresh world; throws on a violation. */
export async function runSequence(sdk, transport, config, cmds, stats) {
  await installProcessHooks();
  const dir = mkdtempSync(join(tmpdir(), 'iottly-simtest-'));
  const world = new World(sdk, transport, dir, { ...config, workers: false });
  let ok = false;
  processState.active = true;
  try {
    await world.setup();
    const model = initialModel(config);
    const all = [...(config.subs ?? []).map((p) => new Subscribe(p)), ...(config.autoStart ? [new Start({})] : []), ...cmds];
    await fc.asyncModelRun(() => ({ model, real: world }), all);
    if (stats) {
      stats.steps += model.steps;
      for (const name of world.ran) stats.byName[name] = (stats.byName[name] ?? 0) + 1;
      const s = world.sdk.stats();
      stats.sent += world.seqNext;
      stats.commandsRun += world.invoked.size;
      stats.dropped += s.dropped.total;
      stats.calls += s.callsWritten;
      stats.statuses += world.statuses.length;
    }
    // The end: stop (timed, as a step), let the agent read what is left, check everything.
    const t0 = Date.now();
    await planted(() => world.sdk.stop(), 'the final stop()');
    if (model.running) await checkStopped(world, Date.now() - t0, world.baseline.threads);
    world.stopResolved = true;
    await world.agent.resumeAll?.().catch?.(() => {});
    await waitFor(() => world.log.order.every((c) => !c.open || c.frames.length === 0), 2000);
    checkEnd(world);
    ok = true;
  } finally {
    await withDeadline(world.teardown(), 5000, 'teardown (stop() and closing the agent)');
    rmSync(dir, { recursive: true, force: true });
  }
  try {
    if (ok) await checkNoLeak(world);
  } finally {
    processState.active = false;
  }
}

function withDeadline(p, ms, what) {
  let timer;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new InvariantError('stop-time', `${what} still pending after ${ms} ms`)), ms);
    }),
  ]);
}

/** Replay a printed sequence: replay({ transport, config, commands: [["Start", {}], ...] }). */
export async function replay({ transport, config, commands }) {
  const sdk = loadSdk();
  await runSequence(sdk, transport, config, commands.map(commandFrom));
}

/**
 * Run `runs` sequences on `transport` (or until `untilMs`). Returns { transport, runs, steps, ms,
 * failure } where failure, if any, has { seed, path, invariant, message, config, commands, snippet }.
 */
export async function simulate({ sdk = loadSdk(), transport, seed, runs, path, replayPath, maxCommands = 24, untilMs, log = () => {} }) {
  await installProcessHooks();
  const stats = { steps: 0, sequences: 0, byName: {}, sent: 0, dropped: 0, commandsRun: 0, calls: 0, statuses: 0 };
  const t0 = Date.now();
  let current = Promise.resolve();
  const property = fc.asyncProperty(configArbitrary, fc.commands(commandArbitraries(), { maxCommands, size: 'max', ...(replayPath ? { replayPath } : {}) }), async (config, cmds) => {
    stats.sequences++;
    const run = runSequence(sdk, transport, config, cmds, stats);
    current = run.catch(() => {});
    await run;
  });
  const params = { seed, numRuns: runs, timeout: SEQUENCE_DEADLINE_MS, markInterruptAsFailure: false };
  if (path) params.path = path;
  if (untilMs) params.interruptAfterTimeLimit = Math.max(1000, untilMs - Date.now());
  const mem0 = memorySample();
  const out = await fc.check(property, params);
  // fast-check does not wait for a run it abandons (the time limit, a timeout): let it finish and
  // clean up (its agent process, its SDK) before anything else starts, or that would see its handles.
  let bound;
  await Promise.race([current, new Promise((r) => (bound = setTimeout(r, SEQUENCE_DEADLINE_MS)))]);
  clearTimeout(bound);
  const mem1 = memorySample();
  const result = { transport, runs: out.numRuns, sequences: stats.sequences, steps: stats.steps, ms: Date.now() - t0, seed: out.seed, interrupted: out.interrupted, failure: null };
  result.memory = { before: mem0, after: mem1 };
  const heapGrowth = mem1.heapMiB - mem0.heapMiB;
  if (!out.failed && stats.sequences >= 50 && heapGrowth > 64) {
    result.failure = {
      seed: out.seed,
      path: null,
      invariant: 'memory',
      message: `[memory] JS heap grew ${heapGrowth.toFixed(1)} MiB over ${stats.sequences} sequences (after GC): ${mem0.heapMiB.toFixed(1)} -> ${mem1.heapMiB.toFixed(1)} MiB; RSS ${mem0.rssMiB.toFixed(1)} -> ${mem1.rssMiB.toFixed(1)} MiB`,
      config: null,
      commands: [],
      snippet: '',
      reproduce: `npm run simtest -- --transport ${transport} --seed ${out.seed} --runs ${runs}`,
    };
  }
  if (out.failed) {
    const [config, cmds] = out.counterexample;
    const printed = String(cmds);
    const replayPath = /replayPath="([^"]*)"/.exec(printed)?.[1] ?? null;
    const list = printed.replace(/\s*\/\*.*\*\/\s*$/, '');
    const commands = list ? JSON.parse(`[${list}]`) : [];
    const err = out.errorInstance;
    result.failure = {
      seed: out.seed,
      path: out.counterexamplePath,
      replayPath,
      invariant: err?.invariant ?? 'exception',
      message: err instanceof Error ? err.message : String(out.error),
      config,
      commands,
      snippet: snippet(transport, config, commands, err?.invariant ?? 'exception'),
      reproduce: `npm run simtest -- --transport ${transport} --seed ${out.seed} --path ${out.counterexamplePath} --replay-path '${replayPath}' --max-commands ${maxCommands}`,
    };
  }
  result.detail = { ...stats, plantedUncaught: processState.plantedUncaught };
  log(`messages sent ${stats.sent} (dropped ${stats.dropped}), commands run by callbacks ${stats.commandsRun}, calls written ${stats.calls}, statuses ${stats.statuses}, planted uncaught ${processState.plantedUncaught}`);
  log(`steps by command: ${JSON.stringify(stats.byName)}`);
  return result;
}

let gc = globalThis.gc;
/** Heap and RSS in MiB, after a full GC (exposed at run time when node was not started with --expose-gc). */
export function memorySample() {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc');
  }
  gc();
  gc();
  const m = process.memoryUsage();
  return { heapMiB: m.heapUsed / 2 ** 20, rssMiB: m.rss / 2 ** 20 };
}

function snippet(transport, config, commands, invariant) {
  const lines = commands.map((c) => `      ${JSON.stringify(c)},`).join('\n');
  return [
    `test('simtest regression (${transport}): ${invariant}', () =>`,
    `  replay({`,
    `    transport: ${JSON.stringify(transport)},`,
    `    config: ${JSON.stringify(config)},`,
    `    commands: [`,
    lines,
    `    ],`,
    `  }));`,
  ].join('\n');
}
