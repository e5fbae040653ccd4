// Reconnection driven by the socket path: while the agent is away the SDK watches the path
// (inotify) and connects as soon as the agent binds it, whatever reconnectIntervalMs says; it makes
// few attempts meanwhile; where no watch is possible it polls every reconnectIntervalMs as before.
// reconnectIntervalMs is one minute in most tests here: a link within the deadline can only come
// from the watch.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { transports, tempSocket, makeSDK, startAndWait, startSim, waitFor, AgentSimulator, DEADLINE_MS } from './helpers.mjs';

const MINUTE = 60_000;
const CHILD = fileURLToPath(new URL('./fixtures/watch-child.mjs', import.meta.url));

function runChild(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS * 2);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`watch child exited with ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)));
    });
  });
}

for (const transport of transports()) {
  describe(`reconnection on a change of the socket path [${transport}]`, () => {
    test('an agent that restarts is met again at once, with reconnectIntervalMs of a minute', async (t) => {
      const socketPath = tempSocket(t);
      let sim = new AgentSimulator({ socketPath });
      await sim.listen();
      const client = makeSDK(t, transport, socketPath, { reconnectIntervalMs: MINUTE });
      await startAndWait(client);
      for (let round = 0; round < 3; round++) {
        await sim.close();
        await waitFor(() => !client.linked, `round ${round}: the link lost`);
        sim = new AgentSimulator({ socketPath });
        await sim.listen();
        await waitFor(() => client.linked && sim.clients.length === 1, `round ${round}: linked to the new agent`);
      }
      await sim.close();
    });

    test('an agent that binds while the first attempt is failing is met at once (no watch event comes for it)', async (t) => {
      const socketPath = tempSocket(t);
      const client = makeSDK(t, transport, socketPath, { reconnectIntervalMs: MINUTE, handshakeTimeoutMs: 50 });
      client.on('connectError', () => {});
      // connect() fails with ENOENT now, but the SDK hears of it only on a later turn of the loop:
      // the agent listens in between, before the watch is in place.
      client.start();
      // listen() binds in this same turn, before the failure is reported.
      const server = net.createServer((socket) => socket.on('error', () => {}).resume());
      server.listen(socketPath);
      t.after(() => new Promise((resolve) => server.close(resolve)));
      let accepted = 0;
      server.on('connection', () => accepted++);
      // Sooner than the 5 s safety retry (which would link it too): typically within milliseconds.
      await waitFor(() => client.linked && accepted === 1, 'linked before the safety retry', 3000);
    });

    test('a socket directory that is missing at start, or deleted and created again, is followed', async (t) => {
      const root = mkdtempSync(join(tmpdir(), 'iottly-watch-'));
      t.after(() => rmSync(root, { recursive: true, force: true }));
      const dir = join(root, 'run', 'agent');
      const socketPath = join(dir, 'agent.sock');
      const client = makeSDK(t, transport, socketPath, { reconnectIntervalMs: MINUTE, handshakeTimeoutMs: 50 });
      client.on('connectError', () => {});
      client.start();
      // Two levels are missing: the watch sits on `root` and follows the path down as it appears.
      mkdirSync(join(root, 'run'));
      mkdirSync(dir);
      let sim = new AgentSimulator({ socketPath });
      await sim.listen();
      await waitFor(() => client.linked, 'linked once the directories and the socket appeared');
      await sim.close();
      rmSync(join(root, 'run'), { recursive: true, force: true });
      await waitFor(() => !client.linked, 'the link lost');
      mkdirSync(dir, { recursive: true });
      sim = new AgentSimulator({ socketPath });
      await sim.listen();
      await waitFor(() => client.linked, 'linked again after the directory was deleted and created again');
      await sim.close();
    });

    test('a path that is a regular file, then a socket, is met once it is a socket', async (t) => {
      const socketPath = tempSocket(t);
      writeFileSync(socketPath, 'not a socket');
      const client = makeSDK(t, transport, socketPath, { reconnectIntervalMs: MINUTE, handshakeTimeoutMs: 50 });
      const errors = [];
      client.on('connectError', (e) => errors.push(e.code));
      client.start();
      await waitFor(() => errors.length > 0, 'a refused connection to the regular file');
      assert.equal(errors[0], 'ECONNREFUSED');
      rmSync(socketPath);
      const sim = await startSim(t, { socketPath });
      await waitFor(() => client.linked && sim.clients.length === 1, 'linked once the path is a socket');
    });

    test('while the agent is away a watched path costs few attempts; without a watch the SDK polls', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'iottly-watch-'));
      try {
        // 1.5 s away with reconnectIntervalMs 20: polling makes dozens of attempts, the watch one or two.
        const watched = await runChild([transport, join(dir, 'a.sock'), '20', '1500'], {});
        const polled = await runChild([transport, join(dir, 'b.sock'), '20', '1500'], { IOTTLY_SDK_TEST_FAULT: 'no-watch' });
        assert.ok(watched.attemptsAway <= 3, `watched: ${watched.attemptsAway} attempts while away`);
        assert.ok(polled.attemptsAway >= 10, `polled: ${polled.attemptsAway} attempts while away`);
        assert.equal(polled.linked, true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
