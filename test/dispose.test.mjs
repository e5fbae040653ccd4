// Disposal: `await using sdk = new IottlySDK(...)` stops the SDK when the scope ends, through
// Symbol.asyncDispose, which calls stop(). Node 20 has the symbol but not the syntax, so the syntax is
// checked the way a TypeScript user gets it: compiled by tsc, then run.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { transports, startSim, makeSDK, startAndWait, waitFor, DEADLINE_MS } from './helpers.mjs';

const REPO = fileURLToPath(new URL('..', import.meta.url));

function run(args, cwd) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 6 * DEADLINE_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

for (const transport of transports()) {
  describe(`disposal [${transport}]`, () => {
    it('Symbol.asyncDispose is stop(): the goodbye is sent and the statuses close', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);
      client.send({ last: true });
      await client[Symbol.asyncDispose]();
      assert.equal(client.linked, false);
      assert.deepEqual(client.statuses, ['started', 'stopped']);
      await waitFor(() => sim.counts.goodbyes === 1, 'the goodbye');
      assert.deepEqual(sim.telemetry.map((r) => r.payload), [{ last: true }]);
    });
  });
}

describe('disposal with await using (TypeScript)', () => {
  it('a scope with `await using` stops the SDK when it ends, before the next statement', async (t) => {
    const sim = await startSim(t);
    const dir = mkdtempSync(join(tmpdir(), 'iottly-dispose-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(REPO, join(dir, 'node_modules', 'iottly-sdk'), 'dir');
    writeFileSync(
      join(dir, 'app.mts'),
      `import { IottlySDK } from 'iottly-sdk';
      let sdk: IottlySDK | undefined;
      {
        await using scoped = new IottlySDK('dispose-app', { socketPath: ${JSON.stringify(sim.socketPath)} });
        sdk = scoped;
        await new Promise<void>((resolve) => {
          scoped.on('agentStatus', (s) => s === 'started' && resolve());
          scoped.start();
        });
        scoped.send({ inScope: true });
      }
      console.log(JSON.stringify({ linked: sdk.linked }));
      `,
    );
    const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const types = join(REPO, 'node_modules', '@types');
    const compiled = await run(
      [tsc, '--strict', '--skipLibCheck', '--target', 'ES2022', '--lib', 'ES2022,esnext.disposable', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--typeRoots', types, '--types', 'node', 'app.mts'],
      dir,
    );
    assert.equal(compiled.code, 0, compiled.out);
    const ran = await run(['app.mjs'], dir);
    assert.equal(ran.code, 0, ran.out);
    assert.deepEqual(JSON.parse(ran.out.trim().split('\n').at(-1)), { linked: false });
    await waitFor(() => sim.counts.goodbyes === 1, 'the goodbye');
    assert.deepEqual(sim.telemetry.map((r) => r.payload), [{ inScope: true }]);
  });
});
