// Shared test helpers: temp socket paths, a running simulator, waiting for events with deadlines,
// and the list of transports every behaviour test runs against.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const sdk = require('../dist/index.js');
export const { AgentSimulator } = require('../dist/sim/index.js');

/** Deadlines scale with IOTTLY_TEST_SLOWDOWN (e.g. 10 under CPU emulation). */
export const SLOWDOWN = Number(process.env.IOTTLY_TEST_SLOWDOWN || 1);
export const DEADLINE_MS = 10_000 * SLOWDOWN;

/** Transports to run every behaviour test against: JS always, native when the addon loads. */
export function transports() {
  const list = ['js'];
  if (sdk.nativeAvailable()) list.push('native');
  else if (process.env.IOTTLY_REQUIRE_NATIVE === '1') {
    throw new Error(`IOTTLY_REQUIRE_NATIVE=1 but the addon does not load: ${sdk.nativeLoadError()?.message}`);
  }
  return list;
}

/** A fresh directory with a socket path in it; removed by the returned cleanup. */
export function tempSocket(t) {
  const dir = mkdtempSync(join(tmpdir(), 'iottly-test-'));
  const path = join(dir, 'agent.sock');
  t?.after?.(() => rmSync(dir, { recursive: true, force: true }));
  return path;
}

/** Poll `pred` until true; fail with `what` after the deadline. */
export async function waitFor(pred, what = 'condition', timeoutMs = DEADLINE_MS) {
  const start = Date.now();
  for (;;) {
    let ok = false;
    try {
      ok = await pred();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Resolve with the arguments of the next `event` from `emitter`, or fail after the deadline. */
export function nextEvent(emitter, event, timeoutMs = DEADLINE_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`));
    }, timeoutMs);
    const on = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    emitter.once(event, on);
  });
}

/** Start a simulator on a temp socket; closed after the test. */
export async function startSim(t, options = {}) {
  const socketPath = options.socketPath ?? tempSocket(t);
  const sim = new AgentSimulator({ socketPath, ...options });
  await sim.listen();
  t.after(() => sim.close());
  return sim;
}

/**
 * Create an SDK on `transport` and stop it after the test. Records every agent status it reports
 * in `statuses`, connection statuses in `connection`.
 */
export function makeSDK(t, transport, socketPath, options = {}, name = 'test-app') {
  const statuses = [];
  const connection = [];
  const client = new sdk.IottlySDK(name, {
    socketPath,
    transport,
    onAgentStatusChanged: (s) => statuses.push(s),
    onConnectionStatusChanged: (s) => connection.push(s),
    ...options,
  });
  client.statuses = statuses;
  client.connection = connection;
  t.after(() => client.stop());
  return client;
}

/** Start `client` and wait until it reports 'started'. */
export async function startAndWait(client) {
  const before = client.statuses.filter((s) => s === 'started').length;
  client.start();
  await waitFor(() => client.statuses.filter((s) => s === 'started').length > before, "'started'");
}

// ---- raw agent sockets, for tests that need byte-level control -------------------------------

/**
 * A bare Unix socket server standing in for the agent, with no protocol logic at all. Each accepted
 * connection is recorded as { socket, chunks, text(), lines() }; `paused: true` starts every
 * connection without reading, so the SDK's writes pile up until `conn.socket.resume()`.
 */
export async function startRawAgent(t, { socketPath, paused = false } = {}) {
  const net = await import('node:net');
  const path = socketPath ?? tempSocket(t);
  const conns = [];
  const server = net.createServer({ pauseOnConnect: paused }, (socket) => {
    const conn = {
      socket,
      chunks: [],
      text: () => Buffer.concat(conn.chunks).toString('utf8'),
      /** Complete lines received so far (without the newline). */
      lines: () => {
        const s = conn.text();
        const end = s.lastIndexOf('\n');
        return end < 0 ? [] : s.slice(0, end).split('\n');
      },
    };
    socket.on('data', (c) => conn.chunks.push(c));
    socket.on('error', () => {});
    conns.push(conn);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  const close = () =>
    new Promise((resolve) => {
      for (const c of conns) c.socket.destroy();
      server.close(() => resolve());
    });
  t.after(close);
  return { server, path, conns, close };
}

/**
 * A raw agent whose connections start paused (nothing is read until `conn.socket.resume()`). Each
 * connection records its complete lines parsed as JSON (`frames`; anything unparsable goes to
 * `invalid`), the bytes of an unfinished last line (`tail`), the bytes read, whether it closed, and
 * calls `conn.onData(chunk)` after each read when set.
 */
export async function startFrameAgent(t) {
  const net = await import('node:net');
  const socketPath = tempSocket(t);
  const conns = [];
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    const conn = { socket, frames: [], invalid: [], tail: Buffer.alloc(0), bytes: 0, closed: false, onData: null };
    socket.on('data', (chunk) => {
      conn.bytes += chunk.length;
      let buf = conn.tail.length ? Buffer.concat([conn.tail, chunk]) : chunk;
      let nl;
      while ((nl = buf.indexOf(10)) !== -1) {
        const line = buf.subarray(0, nl).toString('utf8');
        buf = buf.subarray(nl + 1);
        try {
          conn.frames.push(JSON.parse(line));
        } catch {
          conn.invalid.push(line);
        }
      }
      conn.tail = Buffer.from(buf);
      conn.onData?.(chunk);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      conn.closed = true;
    });
    conns.push(conn);
  });
  await new Promise((resolve) => server.listen(socketPath, resolve));
  t.after(
    () =>
      new Promise((resolve) => {
        for (const c of conns) c.socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { socketPath, conns };
}
