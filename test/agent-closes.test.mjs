// An agent that writes frames and closes at once, without reading what the SDK sent (the hello):
// writing to it fails (EPIPE), yet every complete frame it wrote before closing must reach the
// SDK, before the link is reported lost, as the Python reference does with its receiver thread.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { transports, tempSocket, makeSDK, waitFor } from './helpers.mjs';

const ECHO = '{"data":{"echo":{"content":"x"}}}\n';
const LINK_DOWN = '{"signal":{"connectionstatus":"disconnected"}}\n';

/**
 * A raw agent: each connection gets `frames` (one write each) and is closed as soon as the last is
 * in the kernel, without a byte read. Stops listening after `connections` connections.
 */
async function startClosingAgent(t, { frames, connections }) {
  const socketPath = tempSocket(t);
  const state = { accepted: 0, closed: 0 };
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    socket.on('error', () => {});
    state.accepted++;
    if (state.accepted >= connections) server.close();
    frames.forEach((f, i) => socket.write(f, i === frames.length - 1 ? () => socket.destroy() : undefined));
    socket.on('close', () => state.closed++);
  });
  await new Promise((resolve) => server.listen(socketPath, resolve));
  t.after(() => new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve())));
  return { socketPath, state };
}

for (const transport of transports()) {
  describe(`an agent that writes and closes without reading [${transport}]`, () => {
    test('both frames reach the SDK on every connection, before the link is reported lost', async (t) => {
      const N = 60;
      const agent = await startClosingAgent(t, { frames: [ECHO, LINK_DOWN], connections: N });
      const order = [];
      const echoes = [];
      const client = makeSDK(t, transport, agent.socketPath, {
        reconnectIntervalMs: 5,
        handshakeTimeoutMs: 60_000,
        onConnectionStatusChanged: (s) => {
          client.connection.push(s);
          order.push(`connection:${s}`);
        },
      });
      client.subscribe('echo', (params) => {
        echoes.push(params);
        order.push('echo');
      });
      client.on('connectError', () => order.push('connectError'));
      client.start();
      // The server stops listening after N connections: the first connect error after that comes
      // only once the SDK has seen the last connection go, so all N are over by then.
      await waitFor(() => agent.state.accepted === N && client.stats().connectErrors > 0, `${N} connections over`, 30_000);
      const s = client.stats();
      t.diagnostic(`${echoes.length} echoes and ${client.connection.length} connection statuses from ${N} connections`);
      assert.equal(s.reconnects, N - 1, 'one link per connection');
      assert.equal(echoes.length, N, 'the echo command of every connection reached its callback');
      for (const p of echoes) assert.deepEqual(p, { content: 'x' });
      assert.deepEqual(client.connection, Array(N).fill('disconnected'), "'disconnected' of every connection reported");
      // Per connection: echo, then the connection status (wire order), all before the reconnect error.
      assert.deepEqual(order.slice(0, 2 * N), Array(N).fill(['echo', 'connection:disconnected']).flat());
      assert.equal(s.framesReceived, 2 * N);
    });

    test('a frame cut by the close is skipped; the complete ones before it are delivered', async (t) => {
      const N = 20;
      const agent = await startClosingAgent(t, { frames: [ECHO, LINK_DOWN, '{"data":{"echo":{"cont'], connections: N });
      const echoes = [];
      const client = makeSDK(t, transport, agent.socketPath, { reconnectIntervalMs: 5, handshakeTimeoutMs: 60_000 });
      client.subscribe('echo', (params) => echoes.push(params));
      client.start();
      await waitFor(() => agent.state.accepted === N && client.stats().connectErrors > 0, `${N} connections over`, 30_000);
      assert.equal(echoes.length, N);
      assert.deepEqual(client.connection, Array(N).fill('disconnected'));
      assert.equal(client.stats().framesReceived, 2 * N, 'the partial line is not a frame');
    });
  });
}
