// Agent -> SDK signals: agentstatus pass-through, connectionstatus, unknown signals ignored silently.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { transports, startSim, makeSDK, startAndWait, waitFor } from './helpers.mjs';

for (const transport of transports()) {
  describe(`agent signals [${transport}]`, () => {
    it("passes agentstatus values through as received ('stopping', 'upgrading') to the callback and the event", async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      const events = [];
      client.on('agentStatus', (s) => events.push(s));
      await startAndWait(client);
      sim.sendAgentStatus('upgrading');
      sim.sendAgentStatus('stopping');
      await waitFor(() => client.statuses.length === 3, 'two agent statuses');
      assert.deepEqual(client.statuses, ['started', 'upgrading', 'stopping']);
      assert.deepEqual(events, ['started', 'upgrading', 'stopping']);
      // 'stopping' is a status, not a disconnect: the link stays up and no 'stopped' was reported.
      assert.equal(client.linked, true);
    });

    it("delivers connectionstatus connected/disconnected to the callback and the 'connectionStatus' event", async (t) => {
      const sim = await startSim(t, { connectionStatusOnHello: 'connected' });
      const client = makeSDK(t, transport, sim.socketPath);
      const events = [];
      client.on('connectionStatus', (s) => events.push(s));
      await startAndWait(client);
      await waitFor(() => client.connection.length === 1, 'connectionstatus sent after the hello');
      sim.sendConnectionStatus('disconnected');
      sim.sendConnectionStatus('connected');
      await waitFor(() => client.connection.length === 3, 'two more connection statuses');
      assert.deepEqual(client.connection, ['connected', 'disconnected', 'connected']);
      assert.deepEqual(events, ['connected', 'disconnected', 'connected']);
      // Connection status is about the agent's MQTT link: the agent status is unaffected.
      assert.deepEqual(client.statuses, ['started']);
    });

    it('follows an MQTT flap of the agent (disconnected, then connected)', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);
      await sim.flapMqtt(50);
      await waitFor(() => client.connection.length === 2, 'both halves of the flap');
      assert.deepEqual(client.connection, ['disconnected', 'connected']);
    });

    it('ignores unknown signals silently: counted in framesIgnored, no protocolError, the connection carries on', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      const protocolErrors = [];
      client.on('protocolError', (e) => protocolErrors.push(e));
      const got = [];
      client.subscribe('after', (p) => got.push(p));
      await startAndWait(client);
      const before = client.stats();
      sim.sendRaw('{"signal":{"newfeature":{"x":1}}}\n');
      sim.sendRaw('{"signal":{"quota":42}}\n');
      sim.sendRaw('{"signal":{}}\n');
      sim.pushCommand('after', { ok: true });
      await waitFor(() => got.length === 1, 'the command after the unknown signals');
      assert.deepEqual(got, [{ ok: true }]);
      const after = client.stats();
      assert.equal(after.framesIgnored - before.framesIgnored, 3);
      assert.equal(after.framesSkipped, before.framesSkipped);
      assert.deepEqual(protocolErrors, []);
      assert.deepEqual(client.statuses, ['started']);
      assert.deepEqual(client.connection, []);
      assert.equal(client.linked, true);
      assert.equal(sim.counts.connections, 1, 'no reconnect');
      assert.equal(sim.errors.length, 0);
    });
  });
}
