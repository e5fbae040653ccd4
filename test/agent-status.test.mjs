// The agent-status sequence around stop(): every 'started' is followed by exactly one 'stopped', and
// nothing is reported once stop() has resolved, whatever the agent does while stop() runs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { transports, startRawAgent, makeSDK, waitFor, nextEvent, tempSocket, SLOWDOWN } from './helpers.mjs';

const SDKINIT = '{"signal":{"sdkinit":{"version":"1.8.0"}}}\n';

/** 'started' and 'stopped' alternate, starting with 'started'; agent-reported statuses sit inside a pair. */
function assertWellFormed(statuses) {
  let open = false;
  for (const [i, s] of statuses.entries()) {
    if (s === 'started') {
      assert.equal(open, false, `'started' twice without 'stopped' at ${i}: ${statuses.join(',')}`);
      open = true;
    } else if (s === 'stopped') {
      assert.equal(open, true, `'stopped' without 'started' at ${i}: ${statuses.join(',')}`);
      open = false;
    }
  }
  assert.equal(open, false, `'started' never followed by 'stopped': ${statuses.join(',')}`);
}

/** Keeps the main thread busy, so that what the I/O thread does meanwhile is delivered in one later turn. */
function blockFor(ms) {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

/** An SDK linked to a raw agent that has answered its hello with sdkinit 1.8.0: 'started' reported. */
async function startedWithRawAgent(t, transport) {
  const agent = await startRawAgent(t);
  const client = makeSDK(t, transport, agent.path, { handshakeTimeoutMs: 60_000 });
  client.start();
  await waitFor(() => agent.conns.length === 1, 'the connection');
  agent.conns[0].socket.write(SDKINIT);
  await waitFor(() => client.statuses.includes('started'), "'started'");
  return { agent, client };
}

/** Resolves after `ms`: used only to give a wrongly left timer the time to fire, never to wait for an event. */
const quietFor = (ms) => new Promise((r) => setTimeout(r, ms));

for (const transport of transports()) {
  describe(`agent status around stop() [${transport}]`, () => {
    it("an sdkinit arriving while stop() flushes reports nothing: no 'started' without its 'stopped'", async (t) => {
      const agent = await startRawAgent(t, { paused: true });
      const client = makeSDK(t, transport, agent.path, {
        handshakeTimeoutMs: 60_000,
        highWaterMark: 64 * 1024,
        maxQueueBytes: 16 * 1024 * 1024,
        stopTimeoutMs: 30_000 * SLOWDOWN,
      });
      client.start();
      await waitFor(() => agent.conns.length === 1 && client.linked, 'the link');
      // More than the socket buffers hold, so that stop() has to wait for the agent to read.
      const filler = 'x'.repeat(1000);
      for (let i = 0; i < 2000; i++) client.send({ i, filler });
      const stopped = client.stop();
      const conn = agent.conns[0];
      conn.socket.write(SDKINIT);
      conn.socket.resume();
      await stopped;
      await waitFor(() => conn.text().endsWith('"status":"disconnected"}}}\n'), 'the goodbye, last');
      assertWellFormed(client.statuses);
      assert.deepEqual(client.statuses, []);
    });

    it("a connection made just before stop() never reports 'started' after stop() resolved", async (t) => {
      const agent = await startRawAgent(t);
      const handshakeTimeoutMs = 50;
      const client = makeSDK(t, transport, agent.path, { handshakeTimeoutMs });
      client.start();
      // The transport connects meanwhile; its link is handled only after stop() was called.
      blockFor(300 * SLOWDOWN);
      await client.stop();
      const after = client.statuses.length;
      await quietFor(handshakeTimeoutMs * 8 * SLOWDOWN);
      assert.deepEqual(client.statuses.slice(after), [], 'nothing after stop() resolved');
      assertWellFormed(client.statuses);
    });

    it("'stopped' closes a 'started' when stop() runs during the agent's 'stopping'", async (t) => {
      const { agent, client } = await startedWithRawAgent(t, transport);
      agent.conns[0].socket.write('{"signal":{"agentstatus":"stopping"}}\n');
      await waitFor(() => client.statuses.includes('stopping'), "'stopping'");
      await client.stop();
      assert.deepEqual(client.statuses, ['started', 'stopping', 'stopped']);
    });

    it('start(), stop(), start(), stop() in one tick ends stopped, with a well-formed sequence', async (t) => {
      const { agent, client } = await startedWithRawAgent(t, transport);
      const first = client.stop();
      client.start();
      const second = client.stop();
      await Promise.all([first, second]);
      assert.equal(client.linked, false);
      const conns = agent.conns.length;
      await quietFor(300 * SLOWDOWN);
      assert.equal(agent.conns.length, conns, 'no connection after the last stop()');
      assert.deepEqual(client.statuses, ['started', 'stopped']);
    });
  });
}

describe('stop() after a failed connection attempt [js]', () => {
  it('resolves only once the failed socket is gone (its handle closes after the error)', async (t) => {
    const sockets = () => process._getActiveHandles().filter((h) => h instanceof net.Socket).length;
    const before = sockets();
    // stop() at each point of the failing attempt: before it, between its error and its close, after.
    for (let turns = 0; turns < 8; turns++) {
      const client = makeSDK(t, 'js', tempSocket(t));
      client.start();
      for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
      await client.stop();
      assert.equal(sockets(), before, `no socket of the SDK left once stop() resolved (stop after ${turns} turns)`);
    }
  });
});
