// callAgent()/call_agent(): version check, link check, argument checks in protocol.md's order;
// works from the 'started' callback; call frames jump ahead of queued telemetry at a frame boundary.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sdk, AgentSimulator, transports, startSim, makeSDK, startAndWait, waitFor, startRawAgent } from './helpers.mjs';

const { InvalidAgentVersion, DisconnectedSDK, ValueError } = sdk;

const isInvalidVersion = (err) => err instanceof InvalidAgentVersion && err.code === 'ERR_IOTTLY_AGENT_VERSION';
const isDisconnected = (err) => err instanceof DisconnectedSDK && err.code === 'ERR_IOTTLY_DISCONNECTED';

for (const transport of transports()) {
  describe(`callAgent [${transport}]`, () => {
    it('checks its arguments first, whatever the state: a TypeError on a fresh SDK too', (t) => {
      const client = makeSDK(t, transport, '/nonexistent/agent.sock');
      assert.throws(() => client.callAgent(5), (err) => err instanceof TypeError && /cmd must be a non-empty string, got number/.test(err.message));
      assert.throws(() => client.callAgent(), TypeError);
      assert.throws(() => client.callAgent('script', 'not an object'), (err) => err instanceof TypeError && /args must be a plain object/.test(err.message));
    });

    it('raises InvalidAgentVersion on a fresh SDK, saying no agent has announced its version yet', (t) => {
      const client = makeSDK(t, transport, '/nonexistent/agent.sock');
      assert.throws(() => client.callAgent('script', {}), (err) => isInvalidVersion(err) && /no agent has announced its version yet/.test(err.message));
      assert.throws(() => client.call_agent('script'), isInvalidVersion);
    });

    it('raises InvalidAgentVersion when linked to a pre-1.8 agent that sends no sdkinit', async (t) => {
      const sim = await startSim(t, { version: null });
      const client = makeSDK(t, transport, sim.socketPath, { handshakeTimeoutMs: 100 });
      await startAndWait(client);
      assert.equal(client.linked, true);
      assert.throws(() => client.callAgent('script', { a: 1 }), (err) => isInvalidVersion(err) && /did not announce a version/.test(err.message));
      assert.throws(() => client.callAgent(null), TypeError);
      client.send({ marker: 1 });
      await waitFor(() => sim.telemetry.length === 1, 'the marker');
      assert.equal(sim.calls.length, 0);
    });

    it("raises InvalidAgentVersion when the agent's sdkinit says 1.7.9", async (t) => {
      const sim = await startSim(t, { version: '1.7.9' });
      const client = makeSDK(t, transport, sim.socketPath, { handshakeTimeoutMs: 30_000 });
      await startAndWait(client);
      assert.equal(client.agentVersion, '1.7.9');
      assert.throws(() => client.callAgent('script', {}), (err) => isInvalidVersion(err) && /1\.7\.9/.test(err.message));
      client.send({ marker: 1 });
      await waitFor(() => sim.telemetry.length === 1, 'the marker');
      assert.equal(sim.calls.length, 0);
    });

    it('raises DisconnectedSDK while a >= 1.8.0 agent is away, never buffers it, and works again after started', async (t) => {
      const sim = await startSim(t, { version: '1.8.0' });
      const client = makeSDK(t, transport, sim.socketPath, { handshakeTimeoutMs: 30_000, reconnectIntervalMs: 20 });
      await startAndWait(client);
      client.callAgent('first', { n: 1 });
      await waitFor(() => sim.calls.length === 1, 'the first call');
      sim.kill();
      await waitFor(() => client.statuses.includes('stopped'), "'stopped'");
      assert.throws(() => client.callAgent('away', { n: 2 }), isDisconnected);
      assert.throws(() => client.call_agent('away'), isDisconnected);
      // The arguments are checked before the link.
      assert.throws(() => client.callAgent(42, []), TypeError);
      await sim.listen();
      await waitFor(() => client.statuses.filter((s) => s === 'started').length === 2, "the second 'started'");
      client.callAgent('again', { n: 3 });
      await waitFor(() => sim.calls.length === 2, 'the call after reconnecting');
      assert.deepEqual(
        sim.calls.map((c) => [c.name, c.cmd, c.args]),
        [
          ['test-app', 'first', { n: 1 }],
          ['test-app', 'again', { n: 3 }],
        ],
      );
    });

    it('keeps the last known version until the next sdkinit, then re-learns it (a downgrade forbids calls)', async (t) => {
      const first = await startSim(t, { version: '1.8.0' });
      const client = makeSDK(t, transport, first.socketPath, { handshakeTimeoutMs: 30_000, reconnectIntervalMs: 20 });
      await startAndWait(client);
      first.kill();
      await waitFor(() => client.statuses.includes('stopped'), "'stopped'");
      assert.equal(client.agentVersion, '1.8.0', 'the version outlives the connection');
      // The next agent sends its sdkinit only when the test says so, and with an older version.
      const older = new AgentSimulator({ socketPath: first.socketPath, version: null });
      t.after(() => older.close());
      await older.listen();
      await waitFor(() => client.linked && older.counts.hellos === 1, 'linked to the older agent');
      // Linked, sdkinit not in yet: the last known version stands and the call goes out.
      assert.equal(client.agentVersion, '1.8.0');
      client.callAgent('before-sdkinit', { n: 1 });
      await waitFor(() => older.calls.length === 1, 'the call made before sdkinit');
      assert.deepEqual(client.statuses, ['started', 'stopped']);
      older.sendSdkinit('1.7.0');
      await waitFor(() => client.statuses.filter((s) => s === 'started').length === 2, "the second 'started'");
      assert.equal(client.agentVersion, '1.7.0');
      assert.throws(() => client.callAgent('after-downgrade', {}), isInvalidVersion);
    });

    it('checks cmd and args with a TypeError; non-serialisable args are a ValueError', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);
      for (const cmd of [42, null, undefined, {}, ['x'], true]) {
        assert.throws(() => client.callAgent(cmd, {}), TypeError, `cmd ${String(cmd)}`);
      }
      for (const args of [[], [1], 'x', 5, true, new Map(), new Date(0)]) {
        assert.throws(() => client.callAgent('script', args), TypeError, `args ${String(args)}`);
      }
      const cycle = {};
      cycle.self = cycle;
      assert.throws(() => client.callAgent('script', cycle), ValueError);
      assert.throws(() => client.callAgent('script', { n: 1n }), ValueError);
      client.callAgent('valid');
      client.call_agent('valid "alias"\n', { list: [1, 'two', null], s: '\u00e9\u{1F680}' });
      await waitFor(() => sim.calls.length === 2, 'the two valid calls');
      assert.deepEqual(
        sim.calls.map((c) => [c.cmd, c.args]),
        [
          ['valid', {}],
          ['valid "alias"\n', { list: [1, 'two', null], s: '\u00e9\u{1F680}' }],
        ],
      );
      assert.equal(sim.invalid.length, 0);
      assert.equal(client.stats().callsWritten, 2);
    });

    it("works from inside the 'started' callback and the 'agentStatus' listener", async (t) => {
      const sim = await startSim(t);
      const failures = [];
      let client = null;
      client = makeSDK(t, transport, sim.socketPath, {
        handshakeTimeoutMs: 30_000,
        onAgentStatusChanged: (s) => {
          if (s !== 'started') return;
          try {
            client.callAgent('from-callback', { at: 'started' });
          } catch (err) {
            failures.push(err);
          }
        },
      });
      client.on('agentStatus', (s) => {
        if (s === 'started') client.call_agent('from-listener', {});
      });
      client.start();
      await waitFor(() => sim.calls.length === 2, 'both calls made on started');
      assert.deepEqual(failures, []);
      assert.deepEqual(
        sim.calls.map((c) => c.cmd),
        ['from-callback', 'from-listener'],
      );
    });

    it('writes the call ahead of queued telemetry, at a frame boundary', async (t) => {
      const agent = await startRawAgent(t, { paused: true });
      const client = makeSDK(t, transport, agent.path, { handshakeTimeoutMs: 30_000 });
      client.start();
      await waitFor(() => agent.conns.length === 1, 'the connection');
      const conn = agent.conns[0];
      conn.socket.write('{"signal":{"sdkinit":{"version":"1.8.0"}}}\n');
      await waitFor(() => client.statuses.includes('started'), "'started'");
      const total = 20_000;
      const filler = 'x'.repeat(80);
      for (let i = 0; i < total; i++) client.send({ i, filler });
      const queued = client.stats().buffered;
      assert.ok(queued > 2000, `the agent is not reading, so most messages wait in the queue (${queued} do)`);
      client.callAgent('urgent', { now: true });
      conn.socket.resume();
      await waitFor(() => conn.lines().length === 1 + total + 1, 'hello, all telemetry and the call', 20_000);
      const frames = conn.lines().map((line, n) => {
        try {
          return JSON.parse(line);
        } catch {
          assert.fail(`line ${n} is not valid JSON: ${line.slice(0, 120)}`);
        }
      });
      assert.equal(frames[0].signal.sdkclient.status, 'connected');
      const callAt = frames.findIndex((f) => f.signal?.sdkclient?.call);
      assert.ok(callAt > 0, 'the call frame arrived');
      assert.deepEqual(frames[callAt].signal.sdkclient.call, { urgent: { now: true } });
      const telemetry = frames.filter((f) => f.data);
      assert.deepEqual(
        telemetry.map((f) => f.data.payload.i),
        Array.from({ length: total }, (_, i) => i),
        'telemetry complete and in order',
      );
      const after = frames.length - 1 - callAt;
      assert.ok(after >= 1000, `the call jumped the queue: ${after} telemetry frames came after it`);
    });
  });
}
