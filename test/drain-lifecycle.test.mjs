// 'drain' is owed to whoever saw send() return false, whatever the SDK's state then: a message
// dropped before start() (maxBufferedMsgs 0) must be followed by 'drain' once the agent is linked,
// as a Node stream's false is followed by 'drain'.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { transports, startSim, makeSDK, nextEvent, tempSocket } from './helpers.mjs';

for (const transport of transports()) {
  describe(`'drain' across the SDK's lifecycle [${transport}]`, () => {
    it("send() false before start(), and after a stop(): 'drain' once linked", async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { maxBufferedMsgs: 0 });
      for (let round = 0; round < 2; round++) {
        assert.equal(client.send({ round }), false, 'dropped while not linked: slow down');
        const drained = nextEvent(client, 'drain');
        client.start();
        await drained;
        assert.equal(client.send({ round, after: true }), true);
        await client.stop();
      }
    });

    it("send() false, then a start() stopped before it linked, then start(): 'drain' once linked", async (t) => {
      // Found by the simulation test (seed 1755326600): the wait armed by the first start() was
      // forgotten by the stop, and nothing armed it again.
      // No agent listens yet, so the first start() cannot link before its stop().
      const socketPath = tempSocket(t);
      const client = makeSDK(t, transport, socketPath, { maxBufferedMsgs: 0 });
      let drains = 0;
      client.on('drain', () => drains++);
      assert.equal(client.send({ n: 1 }), false, 'dropped while not linked: slow down');
      await client.stop();
      client.start();
      await client.stop();
      assert.equal(drains, 0, 'never linked: no drain yet');
      await startSim(t, { socketPath });
      const drained = nextEvent(client, 'drain');
      client.start();
      await drained;
      assert.equal(drains, 1);
      assert.equal(client.send({ n: 2 }), true);
    });
  });
}
