// The README's worker-handler module (`logs.js`), taken from README.md as written, run in the pool:
// it destructures `{ send, signal }` from the context, so the context's functions must work detached.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sdk, transports, startSim, makeSDK, startAndWait, waitFor } from './helpers.mjs';

/** The fenced block of README.md whose first line is `firstLine`. */
function readmeBlock(firstLine) {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const blocks = [...readme.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]);
  const block = blocks.find((b) => b.startsWith(firstLine));
  assert.ok(block, `README.md has a code block starting with ${firstLine}`);
  return block;
}

for (const transport of transports()) {
  describe(`the README's worker handler example [${transport}]`, () => {
    it('summarises a log file: progress telemetry from send(), then the return value; no error frame', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'iottly-readme-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const module = join(dir, 'logs.js');
      writeFileSync(module, readmeBlock('// logs.js'));
      const log = join(dir, 'app.log');
      writeFileSync(log, 'boot\nERROR disk\nok\nERROR net\n');

      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { workers: { maxThreads: 1 } });
      client.subscribe('summarise', sdk.workerHandler(module, 'summarise', { ordered: true }));
      await startAndWait(client);
      sim.pushCommand('summarise', { file: log });
      await waitFor(() => sim.telemetry.length === 2 || sim.errors.length > 0, 'the summary or an error frame');
      assert.deepEqual(sim.errors, []);
      assert.deepEqual(
        sim.telemetry.map((r) => r.payload),
        [
          { summarising: log, lines: 5 },
          { file: log, lines: 5, errors: 2 },
        ],
      );
    });
  });
}
