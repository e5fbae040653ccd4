// Agents that die and restart under a steady stream: real agent processes, SIGKILLed or restarted
// gracefully every few hundred milliseconds while the app sends numbered messages. The checks are in
// test/fixtures/rel-churn.mjs (shared with `npm run soak`); this is the CI-sized run.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sdk, transports, DEADLINE_MS } from './helpers.mjs';
import { runChurn, summarise } from './fixtures/rel-churn.mjs';

const KILLS = 8;
const GRACEFUL = 3;

function scratch(t) {
  const dir = mkdtempSync(join(tmpdir(), 'iottly-rel-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

for (const transport of transports()) {
  describe(`agent churn under a steady stream [${transport}]`, () => {
    test(`${KILLS} SIGKILLs and ${GRACEFUL} graceful restarts: in order, no duplicate, every gap counted or in a dead socket`, async (t) => {
      const restarts = [...Array(KILLS).fill('kill'), ...Array(GRACEFUL).fill('graceful')];
      // Interleave the kinds so each follows the other at least once.
      restarts.sort((a, b) => (a === b ? 0 : a === 'graceful' ? -1 : 1));
      for (let i = 1; i < restarts.length; i += 3) [restarts[i], restarts[restarts.length - i]] = [restarts[restarts.length - i], restarts[i]];
      const r = await runChurn({ sdk, transport, dir: scratch(t), restarts, deadlineMs: DEADLINE_MS });
      t.diagnostic(JSON.stringify(summarise(r)));
      assert.deepEqual(r.problems, []);
      assert.equal(r.transport, transport);
      assert.equal(r.outages.length, KILLS + GRACEFUL);
      // The checks bite: messages were sent while agents were away, so drops were counted.
      assert.ok(r.stats.dropped.overflow > 0, 'some messages were sent while no agent listened');
      // Back within one reconnect interval (200 ms) after the agent listens, plus generous slack.
      for (const o of r.outages) assert.ok(o.reconnectMs <= 200 + 1800 * (DEADLINE_MS / 10_000), `reconnected ${o.reconnectMs} ms after the agent listened`);
    });
  });
}
