// The socket path misbehaves: the file is replaced by a new agent's socket (a new inode), something
// that is not a socket sits at the path, or the directory cannot be entered. The SDK keeps retrying,
// says why through 'connectError' and its counters, and links as soon as a good agent is there.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transports, makeSDK, startAndWait, waitFor, DEADLINE_MS } from './helpers.mjs';
import { spawnAgent } from './fixtures/rel-churn.mjs';
import { forkSdk } from './fixtures/rel-child.mjs';

function scratch(t) {
  const dir = mkdtempSync(join(tmpdir(), 'iottly-rel-'));
  t.after(() => {
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

const REPO = fileURLToPath(new URL('..', import.meta.url));

/**
 * What the SDK child needs (dist/, the addon, the child script), copied under `dir` where any user
 * can read it: a child run as another user cannot read a checkout under a directory only its owner
 * may enter (root's home, a mktemp -d). Returns the child script's path and its environment.
 */
function readableCopy(dir) {
  const root = join(dir, 'pkg');
  cpSync(join(REPO, 'dist'), join(root, 'dist'), { recursive: true });
  const addon = join(REPO, 'build', 'Release', 'iottly_native.node');
  if (existsSync(addon)) {
    mkdirSync(join(root, 'build', 'Release'), { recursive: true });
    copyFileSync(addon, join(root, 'build', 'Release', 'iottly_native.node'));
  }
  const env = {};
  if (process.env.IOTTLY_SDK_NATIVE_PATH) {
    env.IOTTLY_SDK_NATIVE_PATH = join(root, 'explicit.node');
    copyFileSync(process.env.IOTTLY_SDK_NATIVE_PATH, env.IOTTLY_SDK_NATIVE_PATH);
  }
  mkdirSync(join(root, 'test', 'fixtures'), { recursive: true });
  const childPath = join(root, 'test', 'fixtures', 'rel-sdk-child.mjs');
  copyFileSync(join(REPO, 'test', 'fixtures', 'rel-sdk-child.mjs'), childPath);
  return { childPath, env };
}

function startAgent(t, socketPath, logFile) {
  const agent = spawnAgent(socketPath, logFile);
  t.after(() => agent.exitInfo === null && agent.child.kill('SIGKILL'));
  return agent;
}

const logged = (file) => readFileSync(file, 'utf8').split('\n').filter((l) => /^\d+$/.test(l)).map(Number);

for (const transport of transports()) {
  describe(`socket path faults [${transport}]`, () => {
    test('the socket file is replaced by a new agent (new inode): the old link serves until it dies, then the SDK links to the new one', async (t) => {
      const dir = scratch(t);
      const socketPath = join(dir, 'agent.sock');
      const a = startAgent(t, socketPath, join(dir, 'a.log'));
      await a.ready;
      const client = makeSDK(t, transport, socketPath);
      await startAndWait(client);
      client.send({ seq: 0 });
      await waitFor(() => logged(join(dir, 'a.log')).includes(0), 'message 0 at agent A');
      const inodeA = statSync(socketPath).ino;

      unlinkSync(socketPath);
      const b = startAgent(t, socketPath, join(dir, 'b.log'));
      await b.ready;
      assert.notEqual(statSync(socketPath).ino, inodeA, 'agent B listens on a new inode');
      client.send({ seq: 1 });
      await waitFor(() => logged(join(dir, 'a.log')).includes(1), 'message 1 still at agent A');
      assert.equal(b.hellos.length, 0, 'no reason to leave a live link');

      a.child.kill('SIGKILL');
      await waitFor(() => b.hellos.length === 1, 'the SDK linked to agent B');
      client.send({ seq: 2 });
      await waitFor(() => logged(join(dir, 'b.log')).includes(2), 'message 2 at agent B');
      assert.deepEqual(logged(join(dir, 'b.log')), [2]);
      await waitFor(() => client.statuses.length === 3, "'started' again");
      assert.deepEqual(client.statuses, ['started', 'stopped', 'started']);
      const s = client.stats();
      assert.equal(s.reconnects, 1);
      assert.equal(s.dropped.total, 0);
    });

    test('no file, then a regular file, then a directory at the path: retried and reported; links when an agent takes the path', async (t) => {
      const dir = scratch(t);
      const socketPath = join(dir, 'agent.sock');
      const client = makeSDK(t, transport, socketPath, { reconnectIntervalMs: 50, maxBufferedMsgs: 5 });
      const reasons = [];
      client.on('connectError', (e) => reasons.push(e.code));
      client.start();
      await waitFor(() => reasons.includes('ENOENT'), "connectError 'ENOENT'");

      writeFileSync(socketPath, 'not a socket\n');
      await waitFor(() => reasons.includes('ECONNREFUSED'), 'connectError for a regular file');
      let errors = client.stats().connectErrors;
      await waitFor(() => client.stats().connectErrors >= errors + 3, 'retries against the regular file');

      unlinkSync(socketPath);
      mkdirSync(socketPath);
      errors = client.stats().connectErrors;
      await waitFor(() => client.stats().connectErrors >= errors + 3, 'retries against a directory');
      for (let i = 0; i < 8; i++) client.send({ seq: i });

      rmSync(socketPath, { recursive: true });
      const agent = startAgent(t, socketPath, join(dir, 'agent.log'));
      await agent.ready;
      await waitFor(() => client.statuses.includes('started'), "'started' once an agent listens");
      await waitFor(() => logged(join(dir, 'agent.log')).length === 5, 'the kept messages');
      assert.deepEqual(logged(join(dir, 'agent.log')), [3, 4, 5, 6, 7], 'the newest maxBufferedMsgs, in order');
      assert.deepEqual(client.statuses, ['started']);
      assert.deepEqual(reasons.slice(0, 2), ['ENOENT', 'ECONNREFUSED']);
      assert.equal(client.stats().dropped.overflow, 3);
      t.diagnostic(`reasons: ${reasons.join(', ')}; connect errors: ${client.stats().connectErrors}`);
    });

    test('a directory the app may not enter: EACCES reported, retried, linked once access is granted', async (t) => {
      const dir = scratch(t);
      chmodSync(dir, 0o755);
      const locked = join(dir, 'locked');
      mkdirSync(locked, { mode: 0o700 });
      const socketPath = join(locked, 'agent.sock');
      const agent = startAgent(t, socketPath, join(dir, 'agent.log'));
      await agent.ready;
      chmodSync(socketPath, 0o777);
      // root ignores permissions, so under root the app runs as nobody.
      const asRoot = process.getuid?.() === 0;
      const copy = asRoot ? readableCopy(dir) : null;
      const spawnOptions = asRoot ? { uid: 65534, gid: 65534, cwd: dir, env: copy.env } : {};
      const app = await forkSdk(
        t,
        { socketPath, transport, options: { reconnectIntervalMs: 50 } },
        { deadlineMs: DEADLINE_MS, spawnOptions, childPath: copy?.childPath },
      );
      await app.ask('start');
      const denied = await app.waitEvent((e) => e.event === 'connectError', 'a connectError');
      assert.equal(denied.code, 'EACCES', denied.message);
      const first = (await app.ask('stats')).stats.connectErrors;
      await waitFor(async () => (await app.ask('stats')).stats.connectErrors >= first + 3, 'retries while denied');
      assert.equal(app.events.filter((e) => e.event === 'connectError').length, 1, 'one event per reason, not per attempt');

      chmodSync(locked, 0o755);
      await app.waitEvent((e) => e.event === 'agentStatus' && e.status === 'started', "'started' once the directory opens");
      await app.ask('send', { count: 3 });
      await waitFor(() => logged(join(dir, 'agent.log')).length === 3, 'messages at the agent');
      const stopped = await app.ask('stop');
      t.diagnostic(`as ${asRoot ? 'nobody' : 'self'}; stop took ${stopped.ms.toFixed(1)} ms`);
    });
  });
}
