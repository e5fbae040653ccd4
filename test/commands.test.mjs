// Commands from the agent: subscribe, dispatch, overwrite, unknown types; user callbacks that throw
// or reject are reported to the agent as error frames and never stop the SDK.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { transports, startSim, makeSDK, startAndWait, waitFor } from './helpers.mjs';

class SensorFault extends Error {}

class NamedFault extends Error {
  constructor(message) {
    super(message);
    this.name = 'NamedFault';
  }
}

for (const transport of transports()) {
  describe(`commands and callback errors [${transport}]`, () => {
    it('dispatches a command to its subscribed callback with the params, in order', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      const got = [];
      client.subscribe('reboot', (p) => got.push(['reboot', p]));
      client.subscribe('set "config"\n', (p) => got.push(['config', p]));
      await startAndWait(client);
      const params = [{ delay: 5, tags: ['a', 'b'], nested: { ok: true } }, [1, 2], 'now', 7, null, {}];
      for (const p of params) sim.pushCommand('reboot', p);
      sim.pushCommand('set "config"\n', { key: 'v\u00e9' });
      await waitFor(() => got.length === params.length + 1, 'all commands');
      assert.deepEqual(got, [...params.map((p) => ['reboot', p]), ['config', { key: 'v\u00e9' }]]);
      assert.equal(client.stats().commandsDispatched, params.length + 1);
      assert.equal(client.stats().commandsUnhandled, 0);
    });

    it('a second subscribe for the same type replaces the first callback', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      const first = [];
      const second = [];
      client.subscribe('cmd', (p) => first.push(p));
      await startAndWait(client);
      client.subscribe('cmd', (p) => second.push(p));
      sim.pushCommand('cmd', { n: 1 });
      sim.pushCommand('cmd', { n: 2 });
      await waitFor(() => second.length === 2, 'both commands on the new callback');
      assert.deepEqual(second, [{ n: 1 }, { n: 2 }]);
      assert.deepEqual(first, []);
    });

    it('ignores a command type nobody subscribed to (commandsUnhandled) and carries on', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      const got = [];
      const protocolErrors = [];
      client.on('protocolError', (e) => protocolErrors.push(e));
      client.subscribe('known', (p) => got.push(p));
      await startAndWait(client);
      sim.pushCommand('unknown', { x: 1 });
      sim.pushCommand('other', {});
      sim.pushCommand('known', { y: 2 });
      await waitFor(() => got.length === 1, 'the subscribed command after the unknown ones');
      assert.deepEqual(got, [{ y: 2 }]);
      assert.equal(client.stats().commandsUnhandled, 2);
      assert.equal(client.stats().commandsDispatched, 1);
      assert.deepEqual(protocolErrors, []);
      assert.equal(sim.errors.length, 0);
      assert.equal(sim.counts.connections, 1);
    });

    it('command types named like Object.prototype members are plain names, dispatched or ignored safely', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      const got = [];
      client.subscribe('__proto__', (p) => got.push(['__proto__', p]));
      client.subscribe('after', (p) => got.push(['after', p]));
      await startAndWait(client);
      for (const cmd of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) sim.pushCommand(cmd, { polluted: true });
      sim.pushCommand('after', {});
      await waitFor(() => got.length === 2, 'the __proto__ command and the one after');
      assert.deepEqual(got, [
        ['__proto__', { polluted: true }],
        ['after', {}],
      ]);
      assert.equal({}.polluted, undefined);
      assert.equal(client.stats().commandsUnhandled, 3);
      assert.equal(sim.errors.length, 0);
    });

    it('subscribe() rejects bad arguments with a TypeError', (t) => {
      const client = makeSDK(t, transport, '/nonexistent/agent.sock');
      for (const cmdType of [42, null, undefined, {}, ['a'], Symbol('s')]) {
        assert.throws(() => client.subscribe(cmdType, () => {}), TypeError, `cmdType ${String(cmdType)}`);
      }
      for (const callback of [null, undefined, 'fn', 42, {}, []]) {
        assert.throws(() => client.subscribe('cmd', callback), TypeError, `callback ${String(callback)}`);
      }
    });

    it('a throwing command callback becomes an error frame with the class name and message; the SDK keeps working', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      const reported = [];
      client.on('callbackError', (info) => reported.push(info));
      const got = [];
      client.subscribe('plain', () => {
        throw new Error('plain failure');
      });
      client.subscribe('typed', () => {
        throw new RangeError('out of "range"\nline2');
      });
      client.subscribe('custom', () => {
        throw new SensorFault('sensor 3 is dead');
      });
      client.subscribe('named', () => {
        throw new NamedFault('named failure');
      });
      client.subscribe('ok', (p) => got.push(p));
      await startAndWait(client);
      for (const cmd of ['plain', 'typed', 'custom', 'named']) sim.pushCommand(cmd, {});
      await waitFor(() => sim.errors.length === 4, 'four error frames');
      assert.deepEqual(
        sim.errors.map((e) => [e.name, e.type, e.msg]),
        [
          ['test-app', 'Error', 'plain failure'],
          ['test-app', 'RangeError', 'out of "range"\nline2'],
          ['test-app', 'SensorFault', 'sensor 3 is dead'],
          ['test-app', 'NamedFault', 'named failure'],
        ],
      );
      sim.pushCommand('ok', { still: 'alive' });
      await waitFor(() => got.length === 1, 'a command after the failures');
      assert.deepEqual(got, [{ still: 'alive' }]);
      assert.equal(client.stats().callbackErrors, 4);
      assert.deepEqual(
        reported.map((r) => [r.source, r.error?.message]),
        [
          ['command:plain', 'plain failure'],
          ['command:typed', 'out of "range"\nline2'],
          ['command:custom', 'sensor 3 is dead'],
          ['command:named', 'named failure'],
        ],
      );
      assert.ok(reported[2].error instanceof SensorFault);
      assert.equal(client.linked, true);
      assert.equal(sim.counts.connections, 1);
      assert.equal(sim.invalid.length, 0);
    });

    it('a callback throwing a non-Error value (string, number, undefined, unprintable object) is reported too', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      const got = [];
      const thrown = {
        str: 'just a string',
        num: 42,
        undef: undefined,
        bare: Object.create(null),
        hostile: {
          toString() {
            throw new Error('toString fails');
          },
        },
      };
      for (const [cmd, value] of Object.entries(thrown)) {
        client.subscribe(cmd, () => {
          throw value;
        });
      }
      client.subscribe('ok', (p) => got.push(p));
      await startAndWait(client);
      for (const cmd of Object.keys(thrown)) sim.pushCommand(cmd, {});
      sim.pushCommand('ok', { after: true });
      await waitFor(() => got.length === 1, 'a command after the odd throws');
      await waitFor(() => sim.errors.length === 5, 'five error frames');
      assert.deepEqual(
        sim.errors.slice(0, 3).map((e) => [e.type, e.msg]),
        [
          ['string', 'just a string'],
          ['number', '42'],
          ['undefined', 'undefined'],
        ],
      );
      assert.equal(sim.errors[3].type, 'object');
      assert.equal(sim.errors[4].type, 'object');
      assert.equal(client.stats().callbackErrors, 5);
      assert.equal(sim.invalid.length, 0);
      assert.equal(client.linked, true);
    });

    it('a rejecting async command callback becomes an error frame', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      const reported = [];
      client.on('callbackError', (info) => reported.push(info));
      client.subscribe('async', async (p) => {
        await null;
        throw new TypeError(`bad param ${p.v}`);
      });
      await startAndWait(client);
      sim.pushCommand('async', { v: 9 });
      await waitFor(() => sim.errors.length === 1, 'the error frame');
      assert.deepEqual([sim.errors[0].type, sim.errors[0].msg], ['TypeError', 'bad param 9']);
      await waitFor(() => reported.length === 1, "'callbackError'");
      assert.equal(reported[0].source, 'command:async');
      assert.equal(client.stats().callbackErrors, 1);
    });

    it('throwing agent-status and connection-status callbacks become error frames; statuses keep flowing', async (t) => {
      const sim = await startSim(t);
      const agentStatuses = [];
      const connStatuses = [];
      const client = makeSDK(t, transport, sim.socketPath, {
        onAgentStatusChanged: (s) => {
          agentStatuses.push(s);
          throw new Error(`agent status ${s} not handled`);
        },
        onConnectionStatusChanged: (s) => {
          connStatuses.push(s);
          throw new SensorFault(`mqtt ${s}`);
        },
      });
      const reported = [];
      client.on('callbackError', (info) => reported.push(info.source));
      const events = [];
      client.on('agentStatus', (s) => events.push(s));
      client.start();
      await waitFor(() => sim.errors.length === 1, "the error from the 'started' callback");
      sim.sendConnectionStatus('disconnected');
      await waitFor(() => sim.errors.length === 2, 'the error from the connection-status callback');
      sim.sendAgentStatus('stopping');
      await waitFor(() => sim.errors.length === 3, "the error from the 'stopping' callback");
      assert.deepEqual(
        sim.errors.map((e) => [e.type, e.msg]),
        [
          ['Error', 'agent status started not handled'],
          ['SensorFault', 'mqtt disconnected'],
          ['Error', 'agent status stopping not handled'],
        ],
      );
      assert.deepEqual(agentStatuses, ['started', 'stopping']);
      assert.deepEqual(events, ['started', 'stopping']);
      assert.deepEqual(connStatuses, ['disconnected']);
      assert.deepEqual(reported, ['agentStatus', 'connectionStatus', 'agentStatus']);
      assert.equal(client.stats().callbackErrors, 3);
      assert.equal(client.linked, true);
    });

    it("a throwing 'agentStatus' event listener is reported like a callback error", async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      client.on('agentStatus', (s) => {
        if (s === 'upgrading') throw new Error('listener failed');
      });
      await startAndWait(client);
      sim.sendAgentStatus('upgrading');
      await waitFor(() => sim.errors.length === 1, 'the error frame');
      assert.equal(sim.errors[0].msg, 'listener failed');
      assert.deepEqual(client.statuses, ['started', 'upgrading']);
      assert.equal(client.stats().callbackErrors, 1);
    });
  });
}
