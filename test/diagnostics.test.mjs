// Problems are visible without a listener: NODE_DEBUG=iottly-sdk logs what happens to the link,
// diagnostics_channel carries the same, a socket path too long for connect() is refused at
// construction, and a connection error no retry can clear is a process warning when nobody listens.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sdk, transports, startSim, makeSDK, startAndWait, waitFor, tempSocket, DEADLINE_MS } from './helpers.mjs';

const { IottlySDK } = sdk;
const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));

function node(code, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', code], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS * 2);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

for (const transport of transports()) {
  describe(`diagnostics [${transport}]`, () => {
    it('diagnostics_channel carries connect errors, links, skipped frames, drops and the unlink', async (t) => {
      const seen = [];
      const names = ['link', 'unlink', 'connectError', 'drop', 'frameSkipped'];
      const handlers = names.map((name) => {
        const fn = (message) => seen.push([name, message]);
        subscribe(`iottly-sdk:${name}`, fn);
        return [name, fn];
      });
      t.after(() => handlers.forEach(([name, fn]) => unsubscribe(`iottly-sdk:${name}`, fn)));
      const socketPath = tempSocket(t);
      const client = makeSDK(t, transport, socketPath, { maxBufferedMsgs: 1, handshakeTimeoutMs: 50 });
      client.on('connectError', () => {});
      client.start();
      await waitFor(() => seen.some(([n, m]) => n === 'connectError' && m.sdk === client), 'a connectError message');
      client.send({ a: 1 });
      client.send({ a: 2 }); // over maxBufferedMsgs while away: one dropped
      const sim = await startSim(t, { socketPath });
      await waitFor(() => client.linked && sim.clients.length === 1, 'linked');
      sim.clients[0].socket.write('not json\n');
      await waitFor(() => seen.some(([n]) => n === 'frameSkipped'), 'a frameSkipped message');
      sim.kill();
      await waitFor(() => seen.some(([n]) => n === 'unlink'), 'an unlink message');
      const ours = seen.filter(([, m]) => m.sdk === client);
      const first = (name) => ours.find(([n]) => n === name)?.[1];
      assert.equal(first('connectError').error.code, 'ENOENT');
      assert.equal(first('connectError').socketPath, socketPath);
      assert.equal(first('link').socketPath, socketPath);
      assert.deepEqual({ reason: first('drop').reason, count: first('drop').count }, { reason: 'overflow', count: 1 });
      assert.deepEqual({ reason: first('frameSkipped').reason, bytes: first('frameSkipped').bytes }, { reason: 'invalid JSON', bytes: 8 });
      assert.ok(ours.findIndex(([n]) => n === 'connectError') < ours.findIndex(([n]) => n === 'link'));
      assert.ok(ours.findIndex(([n]) => n === 'link') < ours.findIndex(([n]) => n === 'unlink'));
    });

    it('NODE_DEBUG=iottly-sdk logs the connect error, the link and the drop to stderr; nothing without it', async (t) => {
      const socketPath = tempSocket(t);
      const sim = await startSim(t, { socketPath });
      const code = `
        const { IottlySDK } = require(${JSON.stringify(DIST)});
        const sdk = new IottlySDK('dbg', { socketPath: ${JSON.stringify(socketPath)}, transport: '${transport}', maxBufferedMsgs: 0 });
        sdk.on('connectError', () => {});
        sdk.send({ a: 1 }); // dropped: nothing kept while away
        sdk.on('agentStatus', (s) => { if (s === 'started') sdk.stop(); });
        sdk.start();`;
      const on = await node(code, { NODE_DEBUG: 'iottly-sdk' });
      assert.equal(on.code, 0, on.stderr);
      assert.match(on.stderr, /IOTTLY-SDK \d+: link dbg: linked to /);
      assert.match(on.stderr, /IOTTLY-SDK \d+: drop dbg: dropped 1 \(overflow\)/);
      const off = await node(code, { NODE_DEBUG: '' });
      assert.equal(off.code, 0, off.stderr);
      assert.doesNotMatch(off.stderr, /IOTTLY-SDK/);
      assert.ok(sim.counts.goodbyes >= 2);
    });

    it('a connection error no retry clears is a process warning, once, when nobody listens to connectError', async () => {
      const code = `
        const { IottlySDK } = require(${JSON.stringify(DIST)});
        const warnings = [];
        process.on('warning', (w) => warnings.push([w.code, w.message]));
        const sdk = new IottlySDK('w', { socketPath: '/etc/passwd/agent.sock', transport: '${transport}', reconnectIntervalMs: 5 });
        sdk.start();
        setTimeout(async () => {
          const attempts = sdk.stats().connectErrors;
          await sdk.stop();
          console.log(JSON.stringify({ warnings, attempts }));
        }, 300);`;
      // Polling every 5 ms (no watch), so that the error repeats many times: still one warning.
      const r = await node(code, { IOTTLY_SDK_TEST_FAULT: 'no-watch' });
      assert.equal(r.code, 0, r.stderr);
      const { warnings, attempts } = JSON.parse(r.stdout.trim());
      assert.ok(attempts >= 2, `${attempts} attempts`);
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.equal(warnings[0][0], 'IOTTLY_SDK_CONNECT');
      assert.match(warnings[0][1], /ENOTDIR/);
      assert.match(warnings[0][1], /check socketPath/);
    });

    it('with a connectError listener there is no warning: the application handles it', async () => {
      const code = `
        const { IottlySDK } = require(${JSON.stringify(DIST)});
        let warned = 0;
        process.on('warning', () => warned++);
        const sdk = new IottlySDK('w', { socketPath: '/etc/passwd/agent.sock', transport: '${transport}', reconnectIntervalMs: 5 });
        let errors = 0;
        sdk.on('connectError', () => errors++);
        sdk.start();
        setTimeout(async () => { await sdk.stop(); console.log(JSON.stringify({ warned, errors })); }, 200);`;
      const r = await node(code, {});
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout.trim()), { warned: 0, errors: 1 });
    });
  });
}

describe('socket path length', () => {
  it('a path longer than sun_path is a RangeError at construction, naming the option and the limit', () => {
    const long = `/tmp/${'x'.repeat(120)}.sock`;
    assert.throws(() => new IottlySDK('app', { socketPath: long }), (err) => err instanceof RangeError && /options\.socketPath is 130 bytes long/.test(err.message) && /at most 107/.test(err.message));
    assert.throws(() => new IottlySDK('app', { socket_path: long }), (err) => err instanceof RangeError && /options\.socket_path/.test(err.message));
    assert.doesNotThrow(() => new IottlySDK('app', { socketPath: `/${'y'.repeat(106)}` }));
  });
});
