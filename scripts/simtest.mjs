#!/usr/bin/env node
// Model-based simulation tests of the SDK against a scripted agent (test/simtest/).
//   npm run simtest                                   CI size: 300 sequences per transport
//   npm run simtest -- --seed S --runs N --transport js|native|both
//   npm run simtest -- --transport js --seed S --path P --replay-path R   replay one failure (as printed)
//   npm run simtest -- --minutes N                    soak: new seeds until N minutes per transport
//   --max-commands K (default 24) bounds each sequence; --json FILE writes the figures;
//   --ignore inv1,inv2 counts those invariants' failures instead of stopping (to look past a known one).
// Exit code 1 when any invariant failed; each failure prints its seed, fast-check path, the shrunk
// sequence and a regression test to paste (replay() from test/simtest/runner.mjs).
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadSdk, simulate } from '../test/simtest/runner.mjs';
import { ignored } from '../test/simtest/invariants.mjs';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    runs: { type: 'string' },
    path: { type: 'string' },
    'replay-path': { type: 'string' },
    transport: { type: 'string', default: 'both' },
    minutes: { type: 'string' },
    'max-commands': { type: 'string', default: '24' },
    json: { type: 'string' },
    'keep-going': { type: 'boolean', default: false },
    ignore: { type: 'string', default: '' },
  },
});

const sdk = loadSdk();
for (const name of values.ignore.split(',').filter(Boolean)) ignored.names.add(name);
let transports = values.transport === 'both' ? ['js', 'native'] : [values.transport];
for (const t of transports) {
  if (t !== 'js' && t !== 'native') {
    console.error(`--transport must be js, native or both, got ${t}`);
    process.exit(2);
  }
}
if (!sdk.nativeAvailable()) {
  if (values.transport === 'native' || process.env.IOTTLY_REQUIRE_NATIVE === '1') {
    console.error(`the native addon does not load: ${sdk.nativeLoadError()?.message}`);
    process.exit(2);
  }
  transports = transports.filter((t) => t !== 'native');
  console.log('simtest: native addon not available, js only');
}

const minutes = values.minutes ? Number(values.minutes) : 0;
const runs = values.runs ? Number(values.runs) : minutes ? 1_000_000 : 300;
const maxCommands = Number(values['max-commands']);
const results = [];
let failed = 0;

for (const transport of transports) {
  const untilMs = minutes ? Date.now() + minutes * 60_000 : undefined;
  let round = 0;
  do {
    const seed = values.seed !== undefined && round === 0 ? Number(values.seed) : (Date.now() ^ (Math.random() * 2 ** 31)) | 0;
    const r = await simulate({ sdk, transport, seed, runs, path: values.path, replayPath: values['replay-path'], maxCommands, untilMs, log: (s) => console.log(`  ${s}`) });
    results.push(r);
    console.log(
      `simtest ${transport}: seed ${r.seed}, ${r.sequences} sequences (${r.runs} runs${r.interrupted ? ', time limit' : ''}), ${r.steps} steps, ${(r.ms / 1000).toFixed(1)} s${r.failure ? ', FAILED' : ', ok'}`,
    );
    if (r.failure) {
      failed++;
      const f = r.failure;
      console.log(`\n=== simtest failure (${transport}) ===`);
      console.log(`invariant: ${f.invariant}`);
      console.log(`message:   ${f.message}`);
      console.log(`seed:      ${f.seed}`);
      console.log(`path:      ${f.path}`);
      console.log(`replayPath (fc.commands): ${f.replayPath}`);
      console.log(`reproduce: ${f.reproduce}`);
      console.log(`config:    ${JSON.stringify(f.config)}`);
      console.log('shrunk sequence:');
      for (const c of f.commands) console.log(`  ${JSON.stringify(c)}`);
      console.log('regression test (import { replay } from "./simtest/runner.mjs"):');
      console.log(f.snippet);
      console.log('');
      if (!values['keep-going']) break;
    }
    round++;
  } while (untilMs && Date.now() < untilMs - 5000);
}

if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
const total = results.reduce((a, r) => a + r.sequences, 0);
if (ignored.names.size) console.log(`ignored invariants (times broken): ${JSON.stringify(ignored.counts)}`);
console.log(`simtest: ${total} sequences, ${failed} failure(s)`);
process.exit(failed ? 1 : 0);
