import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSDK, startAndWait, startSim, transports, waitFor } from './helpers.mjs';

for (const transport of transports()) {
  describe(`'stopping' write hold [${transport}]`, () => {
    test('writes are held after stopping and released after stoppingHoldMs if the agent stays up', async (t) => {
      const sim = await startSim(t);
      const holdMs = 300;
      const client = makeSDK(t, transport, sim.socketPath, { stoppingHoldMs: holdMs });
      await startAndWait(client);

      sim.sendAgentStatus('stopping');
      await waitFor(() => client.statuses.includes('stopping'), "'stopping'");
      const heldAt = Date.now();
      client.send({ held: 1 });
      await waitFor(() => sim.telemetry.some((r) => r.payload.held === 1), 'the held message');
      const waited = Date.now() - heldAt;
      assert.ok(waited >= holdMs - 20, `held message arrived after ${waited} ms, before the ${holdMs} ms hold ended`);
      assert.equal(client.linked, true);

      // Once released, writes flow at once again.
      client.send({ after: 1 });
      await waitFor(() => sim.telemetry.some((r) => r.payload.after === 1), 'a message after the hold');
      assert.equal(client.stats().dropped.total, 0);
    });

    test('another agentstatus value releases the hold at once', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { stoppingHoldMs: 60_000 });
      await startAndWait(client);

      sim.sendAgentStatus('stopping');
      await waitFor(() => client.statuses.includes('stopping'), "'stopping'");
      client.send({ seq: 1 });
      sim.sendAgentStatus('running');
      await waitFor(() => client.statuses.includes('running'), "'running'");
      await waitFor(() => sim.telemetry.some((r) => r.payload.seq === 1), 'the message held during stopping');
    });
  });
}
