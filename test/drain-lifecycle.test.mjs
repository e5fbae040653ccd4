// 'drain' is owed to whoever saw send() return false, whatever the SDK's state then: a message
// dropped before start() (maxBufferedMsgs 0) must be followed by 'drain' once the agent is linked,
// as a Node stream's false is followed by 'drain'.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { transports, startSim, makeSDK, nextEvent } from './helpers.mjs';

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
  });
}
