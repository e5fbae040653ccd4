// The public API surface: option validation and aliases, name validation, transport selection,
// error classes, and the package's entry points as a user would import them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { sdk, transports, tempSocket, startSim, makeSDK, startAndWait, waitFor, DEADLINE_MS } from './helpers.mjs';

const { NATIVE_ABI_VERSION, NativeEvent, NATIVE_COUNTER_FIELDS, checkNativeSurface } = createRequire(import.meta.url)(
  '../dist/transport/addon.js',
);

const DIST_INDEX = fileURLToPath(new URL('../dist/index.js', import.meta.url));

const { IottlySDK, TransportUnavailable, DisconnectedSDK, InvalidAgentVersion, ValueError } = sdk;
const REPO = fileURLToPath(new URL('..', import.meta.url));

/** Assert that `fn` throws `Type` with a message naming every string in `names`. */
function throwsNaming(fn, Type, ...names) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof Type, `expected ${Type.name}, got ${err?.name}: ${err?.message}`);
    for (const name of names) assert.ok(err.message.includes(name), `message ${JSON.stringify(err.message)} names ${name}`);
    return true;
  });
}

/** Run `node` with `args` in `cwd`; resolve with { code, stdout, stderr }. */
function runNode(args, { cwd = REPO, env = {}, timeoutMs = DEADLINE_MS } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill(), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A directory whose node_modules/iottly-sdk is this repository, so children resolve the package by name. */
function consumerDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'iottly-consumer-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(REPO, join(dir, 'node_modules', 'iottly-sdk'), 'dir');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

for (const transport of transports()) {
  describe(`options and API [${transport}]`, () => {
    const make = (options, name = 'app') => new IottlySDK(name, { transport, socketPath: '/nonexistent/s.sock', ...options });

    it('rejects bad option values with TypeError or RangeError naming the option', () => {
      throwsNaming(() => make({ maxBufferedMsgs: -1 }), RangeError, 'maxBufferedMsgs');
      throwsNaming(() => make({ maxBufferedMsgs: 1.5 }), RangeError, 'maxBufferedMsgs');
      throwsNaming(() => make({ maxBufferedMsgs: '10' }), TypeError, 'maxBufferedMsgs');
      throwsNaming(() => make({ maxBufferedMsgs: NaN }), RangeError, 'maxBufferedMsgs');
      throwsNaming(() => make({ socketPath: '' }), TypeError, 'socketPath');
      throwsNaming(() => make({ socketPath: 42 }), TypeError, 'socketPath');
      throwsNaming(() => make({ transport: 'x' }), TypeError, 'transport');
      throwsNaming(() => make({ onAgentStatusChanged: 'not a function' }), TypeError, 'onAgentStatusChanged');
      throwsNaming(() => make({ onConnectionStatusChanged: {} }), TypeError, 'onConnectionStatusChanged');
      throwsNaming(() => make({ reconnectIntervalMs: 0 }), RangeError, 'reconnectIntervalMs');
      throwsNaming(() => make({ reconnectIntervalMs: Infinity }), RangeError, 'reconnectIntervalMs');
      throwsNaming(() => make({ handshakeTimeoutMs: -1 }), RangeError, 'handshakeTimeoutMs');
      throwsNaming(() => make({ maxFrameBytes: 0 }), RangeError, 'maxFrameBytes');
      throwsNaming(() => make({ stopTimeoutMs: -5 }), RangeError, 'stopTimeoutMs');
      throwsNaming(() => make({ highWaterMark: 2 * 1024 * 1024, maxQueueBytes: 1024 * 1024 }), RangeError, 'highWaterMark');
      throwsNaming(() => new IottlySDK('app', 42), TypeError, 'options');
    });

    it('rejects values that would be truncated where they are used (32-bit counts, timers past 2^31 - 1 ms)', () => {
      throwsNaming(() => make({ maxBufferedMsgs: 2 ** 32 }), RangeError, 'maxBufferedMsgs');
      throwsNaming(() => make({ max_buffered_msgs: 2 ** 40 }), RangeError, 'max_buffered_msgs');
      throwsNaming(() => make({ maxFrameBytes: 2 ** 32 }), RangeError, 'maxFrameBytes');
      throwsNaming(() => make({ maxFrameBytes: 2 ** 30 + 1 }), RangeError, 'maxFrameBytes');
      throwsNaming(() => make({ reconnectIntervalMs: 2 ** 31 }), RangeError, 'reconnectIntervalMs');
      throwsNaming(() => make({ handshakeTimeoutMs: 2 ** 31 }), RangeError, 'handshakeTimeoutMs');
      throwsNaming(() => make({ stopTimeoutMs: 2 ** 32 }), RangeError, 'stopTimeoutMs');
      throwsNaming(() => make({ stoppingHoldMs: 2 ** 31 }), RangeError, 'stoppingHoldMs');
      // The largest values allowed are kept as given.
      const big = make({ maxBufferedMsgs: 2 ** 32 - 1, maxFrameBytes: 2 ** 30, reconnectIntervalMs: 2 ** 31 - 1 });
      assert.equal(big.transport, transport);
    });

    it('rejects bad snake_case aliases and a camelCase/snake_case pair with different values', () => {
      throwsNaming(() => make({ max_buffered_msgs: -1 }), RangeError, 'max_buffered_msgs');
      throwsNaming(() => make({ max_buffered_msgs: '3' }), TypeError, 'max_buffered_msgs');
      throwsNaming(() => make({ on_agent_status_changed: 5 }), TypeError, 'on_agent_status_changed');
      throwsNaming(() => make({ on_connection_status_changed: 'x' }), TypeError, 'on_connection_status_changed');
      throwsNaming(() => make({ socketPath: undefined, socket_path: '' }), TypeError, 'socket_path');
      throwsNaming(() => make({ maxBufferedMsgs: 5, max_buffered_msgs: 6 }), TypeError, 'maxBufferedMsgs', 'max_buffered_msgs');
      throwsNaming(() => make({ socketPath: '/a', socket_path: '/b' }), TypeError, 'socketPath', 'socket_path');
      const f = () => {};
      throwsNaming(
        () => make({ onAgentStatusChanged: f, on_agent_status_changed: () => {} }),
        TypeError,
        'onAgentStatusChanged',
        'on_agent_status_changed',
      );
      // The same value under both names is not a conflict.
      assert.doesNotThrow(() => make({ maxBufferedMsgs: 5, max_buffered_msgs: 5, onAgentStatusChanged: f, on_agent_status_changed: f }));
    });

    it('rejects an unknown option name with a TypeError naming it and the closest valid name, at the top level and under workers', () => {
      const named = (bad, near) => (err) =>
        err instanceof TypeError && err.message.includes(`${bad} is not an option`) && (near === null ? /the options are/.test(err.message) : err.message.includes(`did you mean ${near}?`));
      assert.throws(() => make({ maxBuferedMsgs: 5 }), named('options.maxBuferedMsgs', 'options.maxBufferedMsgs'));
      assert.throws(() => make({ socketpath: '/x' }), named('options.socketpath', 'options.socketPath'));
      assert.throws(() => make({ workers: { maxThread: 2 } }), named('options.workers.maxThread', 'options.workers.maxThreads'));
      assert.throws(() => make({ colour: 'blue' }), named('options.colour', null));
      // Symbol keys are not option names; every documented name, in both spellings, is accepted.
      assert.doesNotThrow(() => new IottlySDK('app', { [Symbol('x')]: 1, transport, socket_path: '/tmp/x.sock', max_buffered_msgs: 3, workers: { niceIncrement: 0 } }));
    });

    it('accepts boundary values and no options at all', () => {
      assert.doesNotThrow(() => make({ maxBufferedMsgs: 0, handshakeTimeoutMs: 0, stopTimeoutMs: 0, reconnectIntervalMs: 1 }));
      assert.doesNotThrow(() => make({ onAgentStatusChanged: null, onConnectionStatusChanged: undefined }));
      assert.doesNotThrow(() => make({ highWaterMark: 1024 * 1024, maxQueueBytes: 1024 * 1024 }));
      assert.doesNotThrow(() => new IottlySDK('app'));
      assert.doesNotThrow(() => new IottlySDK('app', null));
    });

    it('validates the name: a non-empty string', () => {
      for (const name of ['', 42, null, undefined, {}, ['a']]) {
        throwsNaming(() => new IottlySDK(name, { transport }), TypeError, 'name');
      }
    });

    it('reports its transport kind', (t) => {
      const client = makeSDK(t, transport, '/nonexistent/s.sock');
      assert.equal(client.transport, transport);
      assert.equal(client.stats().transport, transport);
    });

    it('the snake_case options work end to end (socket_path, max_buffered_msgs, both callbacks)', async (t) => {
      const socketPath = tempSocket(t);
      const agentStatuses = [];
      const connStatuses = [];
      const client = new IottlySDK('snake-app', {
        transport,
        socket_path: socketPath,
        max_buffered_msgs: 2,
        on_agent_status_changed: (s) => agentStatuses.push(s),
        on_connection_status_changed: (s) => connStatuses.push(s),
        reconnectIntervalMs: 20,
      });
      t.after(() => client.stop());
      client.start();
      for (let i = 0; i < 5; i++) client.send({ i });
      const sim = await startSim(t, { socketPath, connectionStatusOnHello: 'connected' });
      await waitFor(() => agentStatuses.includes('started') && connStatuses.length === 1, 'both callbacks');
      await waitFor(() => sim.telemetry.length === 2, 'the two kept messages');
      client.send({ i: 5 });
      await waitFor(() => sim.telemetry.length === 3, 'a message sent while linked');
      assert.deepEqual(sim.telemetry.map((r) => r.payload.i), [3, 4, 5]);
      assert.equal(sim.clients[0].name, 'snake-app');
      assert.deepEqual(connStatuses, ['connected']);
      assert.equal(client.stats().dropped.overflow, 3);
    });

    it("transport: 'native' without the addon throws TransportUnavailable pointing at npm rebuild iottly-sdk; 'auto' falls back to js", () => {
      // A child whose addon path points at nothing: the addon is unavailable there whatever this machine built.
      const script = `
        const { IottlySDK, TransportUnavailable, nativeAvailable } = require(${JSON.stringify(DIST_INDEX)});
        let error = null;
        try { new IottlySDK('app', { transport: 'native', socketPath: '/nonexistent/s.sock' }); }
        catch (err) { error = { unavailable: err instanceof TransportUnavailable, code: err.code, message: err.message }; }
        const auto = new IottlySDK('app', { socketPath: '/nonexistent/s.sock' }).transport;
        console.log(JSON.stringify({ available: nativeAvailable(), error, auto }));`;
      const r = spawnSync(process.execPath, ['-e', script], {
        encoding: 'utf8',
        env: { ...process.env, IOTTLY_SDK_NATIVE_PATH: join(tmpdir(), 'no-such-addon.node'), IOTTLY_SDK_TRANSPORT: '' },
      });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.available, false);
      assert.equal(out.auto, 'js');
      assert.ok(out.error, 'no error thrown');
      assert.equal(out.error.unavailable, true);
      assert.equal(out.error.code, 'ERR_IOTTLY_TRANSPORT_UNAVAILABLE');
      // A command that works in the application's project, where the SDK's own scripts do not exist.
      assert.ok(out.error.message.includes('npm rebuild iottly-sdk'), out.error.message);
    });

    it('an addon of another interface version is refused with a message naming both versions; auto falls back to js', (t) => {
      // Stands in for a build left over from an older release: the loader reads abiVersion before use.
      const dir = mkdtempSync(join(tmpdir(), 'iottly-abi-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const stale = join(dir, 'stale-addon.js');
      writeFileSync(stale, 'exports.Transport = function Transport() {}; exports.abiVersion = 1;\n');
      const script = `
        const { IottlySDK, nativeAvailable, nativeLoadError } = require(${JSON.stringify(DIST_INDEX)});
        const auto = new IottlySDK('app', { socketPath: '/nonexistent/s.sock' }).transport;
        console.log(JSON.stringify({ available: nativeAvailable(), message: nativeLoadError()?.message, auto }));`;
      const r = spawnSync(process.execPath, ['-e', script], {
        encoding: 'utf8',
        env: { ...process.env, IOTTLY_SDK_NATIVE_PATH: stale, IOTTLY_SDK_TRANSPORT: '' },
      });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.available, false);
      assert.equal(out.auto, 'js');
      assert.match(out.message, new RegExp(`interface version 1, this package needs ${NATIVE_ABI_VERSION}\\b`));
      assert.ok(out.message.includes(stale), out.message);
    });
  });
}

describe('native addon surface (event codes and counter fields)', () => {
  const ownTables = () => ({ events: { ...NativeEvent }, counterFields: [...NATIVE_COUNTER_FIELDS] });
  /** The message checkNativeSurface() throws for `binding`, or null when it accepts it. */
  const refusal = (binding) => {
    try {
      checkNativeSurface(binding);
      return null;
    } catch (err) {
      return err.message;
    }
  };

  it("the checker accepts this package's own tables, and the counter fields in any order", () => {
    assert.equal(refusal(ownTables()), null);
    const reordered = ownTables();
    reordered.counterFields.reverse();
    assert.equal(refusal(reordered), null);
  });

  it('an addon whose event codes differ is refused, naming each difference', () => {
    const changed = ownTables();
    changed.events.drain = 10;
    assert.match(refusal(changed) ?? 'accepted', /event drain is 10 in the addon, 7 here/);
    const missing = ownTables();
    delete missing.events.callsDropped;
    assert.match(refusal(missing) ?? 'accepted', /event callsDropped \(9\) missing from the addon/);
    const extra = ownTables();
    extra.events.paused = 10;
    assert.match(refusal(extra) ?? 'accepted', /event paused \(10\) unknown here/);
    const swapped = ownTables();
    [swapped.events.link, swapped.events.unlink] = [swapped.events.unlink, swapped.events.link];
    const message = refusal(swapped) ?? 'accepted';
    assert.match(message, /event link is 2 in the addon, 1 here/);
    assert.match(message, /event unlink is 1 in the addon, 2 here/);
    assert.match(refusal({ counterFields: [...NATIVE_COUNTER_FIELDS] }) ?? 'accepted', /no event table \(events\)/);
  });

  it('an addon whose counter fields differ is refused, naming each difference', () => {
    const missing = ownTables();
    missing.counterFields = missing.counterFields.filter((f) => f !== 'callsBuffered');
    assert.match(refusal(missing) ?? 'accepted', /counter callsBuffered missing from the addon/);
    const extra = ownTables();
    extra.counterFields.push('bytesRead');
    assert.match(refusal(extra) ?? 'accepted', /counter bytesRead unknown here/);
    const twice = ownTables();
    twice.counterFields.push('written');
    assert.match(refusal(twice) ?? 'accepted', /counter written listed twice by the addon/);
    assert.match(refusal({ events: { ...NativeEvent }, counterFields: 'written' }) ?? 'accepted', /no list of counter names/);
    assert.match(refusal({ events: { ...NativeEvent }, counterFields: [1, 2] }) ?? 'accepted', /no list of counter names/);
  });

  it('an addon of this interface version whose event table differs is refused at load, naming the event; auto falls back to js', (t) => {
    // Stands in for an addon built from a native/surface.h changed without src/transport/addon.ts.
    const dir = mkdtempSync(join(tmpdir(), 'iottly-surface-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const fake = join(dir, 'drifted-addon.js');
    const events = { ...NativeEvent, drain: 10 };
    writeFileSync(
      fake,
      `exports.Transport = function Transport() {}; exports.abiVersion = ${NATIVE_ABI_VERSION};\n` +
        `exports.events = ${JSON.stringify(events)}; exports.counterFields = ${JSON.stringify(NATIVE_COUNTER_FIELDS)};\n`,
    );
    const script = `
      const { IottlySDK, nativeAvailable, nativeLoadError } = require(${JSON.stringify(DIST_INDEX)});
      const auto = new IottlySDK('app', { socketPath: '/nonexistent/s.sock' }).transport;
      console.log(JSON.stringify({ available: nativeAvailable(), message: nativeLoadError()?.message, auto }));`;
    const r = spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      env: { ...process.env, IOTTLY_SDK_NATIVE_PATH: fake, IOTTLY_SDK_TRANSPORT: '' },
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.available, false);
    assert.equal(out.auto, 'js');
    assert.match(out.message ?? '', /event drain is 10 in the addon, 7 here/);
    assert.ok(out.message.includes(fake), out.message);
  });

  it('the native transport reads counters by name, in the order the addon lists them', (t) => {
    // A fake addon that lists its counters in reverse and writes 100 + position into each slot.
    const dir = mkdtempSync(join(tmpdir(), 'iottly-counters-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const fake = join(dir, 'reversed-addon.js');
    const fields = [...NATIVE_COUNTER_FIELDS].reverse();
    writeFileSync(
      fake,
      `exports.abiVersion = ${NATIVE_ABI_VERSION}; exports.events = ${JSON.stringify(NativeEvent)};\n` +
        `exports.counterFields = ${JSON.stringify(fields)};\n` +
        'exports.Transport = class { counters(out) { for (let i = 0; i < out.length; i++) out[i] = 100 + i; } };\n',
    );
    const native = fileURLToPath(new URL('../dist/transport/native.js', import.meta.url));
    const script = `
      const { createNativeTransport } = require(${JSON.stringify(native)});
      console.log(JSON.stringify(createNativeTransport({ socketPath: '/nonexistent/s.sock' }, {}).counters()));`;
    const r = spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      env: { ...process.env, IOTTLY_SDK_NATIVE_PATH: fake, IOTTLY_SDK_TRANSPORT: '' },
    });
    assert.equal(r.status, 0, r.stderr);
    const counters = JSON.parse(r.stdout);
    const expected = Object.fromEntries(fields.map((name, i) => [name, 100 + i]));
    assert.deepEqual(counters, expected);
  });
});

describe('module surface', () => {
  it('error classes have stable names and codes', () => {
    const cases = [
      [new DisconnectedSDK(), 'DisconnectedSDK', 'ERR_IOTTLY_DISCONNECTED'],
      [new InvalidAgentVersion('old'), 'InvalidAgentVersion', 'ERR_IOTTLY_AGENT_VERSION'],
      [new ValueError('bad'), 'ValueError', 'ERR_IOTTLY_VALUE'],
      [new TransportUnavailable('none'), 'TransportUnavailable', 'ERR_IOTTLY_TRANSPORT_UNAVAILABLE'],
    ];
    for (const [err, name, code] of cases) {
      assert.ok(err instanceof Error);
      assert.equal(err.name, name);
      assert.equal(err.code, code);
      assert.ok(String(err).startsWith(`${name}:`), String(err));
      assert.equal(typeof err.message, 'string');
    }
  });

  it('package.json version equals SDK_VERSION and the hello version', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
    assert.equal(pkg.name, 'iottly-sdk');
    assert.equal(pkg.version, sdk.SDK_VERSION);
    assert.equal(sdk.SDK_VERSION, '1.3.0');
  });

  it('a string as options is the socket path', async (t) => {
    const sim = await startSim(t);
    const client = new IottlySDK('string-opts', sim.socketPath);
    t.after(() => client.stop());
    assert.equal(client.transport, sdk.defaultTransport());
    client.start();
    client.send({ via: 'string' });
    await waitFor(() => sim.telemetry.length === 1, 'telemetry through a string-configured SDK');
    assert.equal(sim.telemetry[0].name, 'string-opts');
  });

  it('IOTTLY_SDK_TRANSPORT=js makes the default transport js', async () => {
    const code = `
      const sdk = require('./dist/index.js');
      const client = new sdk.IottlySDK('env', { socketPath: '/nonexistent/s.sock' });
      console.log(JSON.stringify({ transport: client.transport, dflt: sdk.defaultTransport() }));
    `;
    const r = await runNode(['-e', code], { env: { IOTTLY_SDK_TRANSPORT: 'js' } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { transport: 'js', dflt: 'js' });
  });

  it("require('iottly-sdk') and import from 'iottly-sdk' work by package name and share one instance", async (t) => {
    const sim = await startSim(t);
    const dir = consumerDir(t);
    // Each child connects, sends one message once 'started', stops gracefully and exits.
    const body = (tag) => `
      const client = new IottlySDK('consumer-${tag}', { socketPath: process.env.SOCK });
      client.on('agentStatus', (s) => {
        if (s !== 'started') return;
        client.send({ via: '${tag}', transport: client.transport });
        client.stop().then(() => console.log('done ' + client.transport));
      });
      client.start();
    `;
    const cjs = `const { IottlySDK, SDK_VERSION } = require('iottly-sdk'); if (SDK_VERSION !== '1.3.0') process.exit(3);${body('cjs')}`;
    const esm = `
      import { IottlySDK, SDK_VERSION } from 'iottly-sdk';
      import dflt from 'iottly-sdk';
      import { createRequire } from 'node:module';
      const require = createRequire(process.cwd() + '/x.js');
      if (require('iottly-sdk').IottlySDK !== IottlySDK || dflt.IottlySDK !== IottlySDK) process.exit(4);
      if (SDK_VERSION !== '1.3.0') process.exit(3);
      ${body('esm')}
    `;
    const env = { SOCK: sim.socketPath };
    const [a, b] = await Promise.all([
      runNode(['-e', cjs], { cwd: dir, env }),
      runNode(['--input-type=module', '-e', esm], { cwd: dir, env }),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.match(a.stdout, /^done (js|native)\n$/);
    assert.match(b.stdout, /^done (js|native)\n$/);
    await waitFor(() => sim.telemetry.length === 2 && sim.counts.goodbyes === 2, 'both children');
    assert.deepEqual(sim.telemetry.map((r) => r.payload.via).sort(), ['cjs', 'esm']);
    assert.deepEqual(sim.telemetry.map((r) => r.name).sort(), ['consumer-cjs', 'consumer-esm']);
  });

  it('the type declarations describe the API for TypeScript users (ESM and CommonJS resolution)', async (t) => {
    const dir = consumerDir(t);
    const esm = `
      import { IottlySDK, ValueError, DisconnectedSDK, InvalidAgentVersion, TransportUnavailable, SDK_VERSION } from 'iottly-sdk';
      import type { IottlySDKOptions, SDKStats, AgentStatus, ProtocolErrorInfo, CallbackErrorInfo } from 'iottly-sdk';
      import { IottlySDK as JsSDK } from 'iottly-sdk/js';
      const opts: IottlySDKOptions = {
        socket_path: '/x',
        max_buffered_msgs: 3,
        on_agent_status_changed: (s: AgentStatus) => void s,
        on_connection_status_changed: (s: string) => void s,
        transport: 'js',
      };
      const c = new IottlySDK('n', opts);
      new IottlySDK('n', '/path/as/string');
      c.subscribe('cmd', (p) => void p);
      const ok: boolean = c.send({ a: 1 }, 'ch');
      c.send({ a: 1 }, null);
      c.callAgent('x', {});
      c.call_agent('x');
      c.on('agentStatus', (s) => s.toUpperCase());
      c.on('protocolError', (e: ProtocolErrorInfo) => e.reason.length + e.bytes);
      c.on('callbackError', (e: CallbackErrorInfo) => e.source.length);
      c.on('connectError', (e: Error) => e.message);
      const st: SDKStats = c.stats();
      const n: number = st.accepted + st.framesSkipped + st.callbackErrors + st.dropped.total;
      const v: string | null = c.agentVersion;
      const linked: boolean = c.linked;
      const kind: 'js' | 'native' = new JsSDK('n').transport;
      const errs: Error[] = [new ValueError('x'), new DisconnectedSDK(), new InvalidAgentVersion('x'), new TransportUnavailable('x')];
      const code: string = new ValueError('x').code;
      const p: Promise<void> = c.stop();
      // @ts-expect-error an unknown option
      new IottlySDK('n', { socketPth: '/x' });
      // @ts-expect-error msg must be an object
      c.send('str');
      // @ts-expect-error transport is one of a fixed set
      new IottlySDK('n', { transport: 'x' });
      // @ts-expect-error no such event
      c.on('agentstatus', () => {});
      export { ok, n, st, v, linked, kind, errs, code, p, SDK_VERSION };
    `;
    const cjs = `
      import sdk = require('iottly-sdk');
      import js = require('iottly-sdk/js');
      const c: InstanceType<typeof sdk.IottlySDK> = new js.IottlySDK('n', { maxBufferedMsgs: 1 });
      c.send({ ok: true });
      export = c;
    `;
    writeFileSync(join(dir, 'esm.mts'), esm);
    writeFileSync(join(dir, 'cjs.cts'), cjs);
    const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const types = join(REPO, 'node_modules', '@types');
    const args = [tsc, '--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--moduleResolution', 'nodenext'];
    const r = await runNode([...args, '--typeRoots', types, '--types', 'node', 'esm.mts', 'cjs.cts'], {
      cwd: dir,
      timeoutMs: 6 * DEADLINE_MS, // type-checking is slow on a loaded machine
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it("'iottly-sdk/js' pins the js transport, from require and import, whatever the options say", async (t) => {
    const dir = consumerDir(t);
    const cjs = `
      const js = require('iottly-sdk/js');
      const a = new js.IottlySDK('a', { socketPath: '/nonexistent/s.sock' });
      const b = new js.IottlySDK('b', { socketPath: '/nonexistent/s.sock', transport: 'native' });
      console.log(JSON.stringify([a.transport, b.transport, typeof js.ValueError, js.SDK_VERSION]));
    `;
    const esm = `
      import { IottlySDK, ValueError, SDK_VERSION } from 'iottly-sdk/js';
      const a = new IottlySDK('a', { socketPath: '/nonexistent/s.sock' });
      const b = new IottlySDK('b', { socketPath: '/nonexistent/s.sock', transport: 'native' });
      console.log(JSON.stringify([a.transport, b.transport, typeof ValueError, SDK_VERSION]));
    `;
    const env = { IOTTLY_SDK_TRANSPORT: 'native' };
    const [a, b] = await Promise.all([
      runNode(['-e', cjs], { cwd: dir, env }),
      runNode(['--input-type=module', '-e', esm], { cwd: dir, env }),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(JSON.parse(a.stdout), ['js', 'js', 'function', '1.3.0']);
    assert.deepEqual(JSON.parse(b.stdout), ['js', 'js', 'function', '1.3.0']);
  });
});
