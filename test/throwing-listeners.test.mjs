// Event listeners that throw (the application's bug) never break the SDK: the SDK finishes what it
// was doing (reconnecting, dispatching a batch, flushing for stop()), then the exception surfaces as
// an uncaught exception, as a throwing node:net listener's would. Each case runs in a child process
// with an 'uncaughtException' handler, as a daemon would have.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { transports, tempSocket, DEADLINE_MS } from './helpers.mjs';

const CHILD = fileURLToPath(new URL('./fixtures/listener-child.mjs', import.meta.url));

function run(t, scenario, transport) {
  const socketPath = tempSocket(t);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CHILD, scenario, transport, socketPath], { timeout: DEADLINE_MS * 3 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`child failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()));
    });
  });
}

for (const transport of transports()) {
  describe(`throwing event listeners [${transport}]`, () => {
    it("a throwing 'connectError' listener: the SDK keeps retrying and links when the agent comes", async (t) => {
      const r = await run(t, 'connectError', transport);
      // ENOENT while the agent is away; the agent's bind() wakes the SDK, which may then meet one
      // ECONNREFUSED before its listen().
      assert.equal(r.uncaught[0], 'listener threw on ENOENT');
      assert.ok(r.uncaught.length <= 2, JSON.stringify(r.uncaught));
      assert.ok(r.uncaught.slice(1).every((m) => m === 'listener threw on ECONNREFUSED'), JSON.stringify(r.uncaught));
      assert.deepEqual(r.statuses, ['started', 'stopped']);
      assert.deepEqual(r.unhandled, []);
    });

    it("a throwing 'protocolError' listener: the commands after the bad frame in the same batch still run", async (t) => {
      const r = await run(t, 'protocolError', transport);
      assert.deepEqual(r.commands, [1, 2, 3]);
      assert.deepEqual(r.uncaught, ['listener threw on protocolError']);
      assert.deepEqual(r.unhandled, []);
    });

    it("a throwing 'drain' listener: stop() still flushes and says goodbye without waiting for its timeout", async (t) => {
      const r = await run(t, 'drain', transport);
      assert.equal(r.goodbye, true);
      assert.ok(r.stopMs < 4000, `stop() took ${r.stopMs} ms, its whole timeout`);
      assert.equal(r.uncaught.length, r.drains);
      assert.ok(r.uncaught.every((m) => m === 'listener threw on drain'));
      assert.deepEqual(r.unhandled, []);
    });

    it("a throwing 'drop' listener: stop() resolves and a start() queued behind it is no unhandled rejection", async (t) => {
      const r = await run(t, 'drop', transport);
      assert.equal(r.firstStopRejected, null);
      assert.deepEqual(r.uncaught, ['listener threw on drop']);
      assert.deepEqual(r.unhandled, []);
    });
  });
}
