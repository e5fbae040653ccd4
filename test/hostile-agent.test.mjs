// A hostile or broken agent: whatever it writes, the SDK skips what is not a valid frame (counted,
// reported as 'protocolError'), never crashes, keeps its memory bounded and keeps dispatching.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { transports, startSim, makeSDK, startAndWait, waitFor, DEADLINE_MS } from './helpers.mjs';

const DIST_INDEX = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const MiB = 1024 * 1024;
// Under `npm run test:asan` the ASan allocator keeps freed memory in quarantine: RSS says nothing
// there, and the heap and ArrayBuffer checks carry the memory assertions alone.
const RSS_MEANINGFUL = !/libasan/.test(process.env.LD_PRELOAD ?? '');

let markers = 0;

/**
 * Run `hostile` (which writes bad bytes through the simulator), then push a valid marker command and
 * wait for it: the marker's dispatch proves the SDK read past everything before it. Asserts that
 * exactly `skipped` frames were skipped and reported, and that the connection never dropped.
 */
async function survives(sim, client, hostile, skipped) {
  const before = client.stats();
  const errors = [];
  const onError = (info) => errors.push(info);
  client.on('protocolError', onError);
  const marker = `marker-${++markers}`;
  const got = [];
  client.subscribe(marker, (p) => got.push(p));
  await hostile();
  sim.pushCommand(marker, { seq: markers });
  await waitFor(() => got.length === 1, `the marker command after the hostile input`);
  client.off('protocolError', onError);
  const after = client.stats();
  assert.equal(after.framesSkipped - before.framesSkipped, skipped, 'framesSkipped');
  assert.equal(errors.length, skipped, `protocolError events: ${JSON.stringify(errors.map((e) => e.reason))}`);
  for (const e of errors) {
    assert.equal(typeof e.reason, 'string');
    assert.ok(e.reason.length > 0);
    assert.equal(typeof e.bytes, 'number');
    assert.equal(typeof e.sample, 'string');
  }
  assert.equal(client.linked, true);
  assert.equal(sim.counts.connections, 1, 'the SDK never reconnected');
  assert.deepEqual(client.statuses, ['started']);
  return errors;
}

/** Write `buf` to the simulator's first client one byte per write, letting the event loop turn between writes. */
async function writeByteByByte(sim, buf) {
  const socket = sim.clients[0].socket;
  for (let i = 0; i < buf.length; i++) {
    await new Promise((resolve) => socket.write(buf.subarray(i, i + 1), resolve));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Write `total` bytes of `fill` (no newline) to `socket`, respecting backpressure. */
async function writeLong(socket, total, chunkBytes = 64 * 1024) {
  const chunk = Buffer.alloc(chunkBytes, 'a');
  for (let sent = 0; sent < total; sent += chunkBytes) {
    const part = total - sent >= chunkBytes ? chunk : chunk.subarray(0, total - sent);
    if (!socket.write(part)) await new Promise((resolve) => socket.once('drain', resolve));
  }
}

/**
 * A child process holding only the SDK, so its memory can be measured apart from the simulator's.
 * It prints one JSON line when 'started' (with its baseline RSS) and one when the 'marker' command
 * arrives (with its peak RSS, commands seen and stats), then stops.
 */
const CHILD = `
const { IottlySDK } = require(${JSON.stringify(DIST_INDEX)});
const [socketPath, transport, maxFrameBytes] = process.argv.slice(1);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const client = new IottlySDK('rss-child', { socketPath, transport, maxFrameBytes: Number(maxFrameBytes), handshakeTimeoutMs: 30000 });
let base = 0, peak = 0, protocolErrors = 0, flood = 0, lastFlood = -1, ordered = true;
const sample = () => { peak = Math.max(peak, process.memoryUsage().rss); };
setInterval(sample, 2).unref();
client.on('protocolError', () => { protocolErrors++; });
client.subscribe('flood', (p) => { if (p.i !== lastFlood + 1) ordered = false; lastFlood = p.i; flood++; if ((flood & 1023) === 0) sample(); });
client.subscribe('marker', () => {
  sample();
  const report = { done: true, base, peak, protocolErrors, flood, ordered, stats: client.stats() };
  // Measured once the batch of frames that carried the marker is released.
  setImmediate(() => {
    out({ ...report, after: snapshot() });
    client.stop().then(() => process.exit(0));
  });
});
const snapshot = () => { global.gc(); global.gc(); const m = process.memoryUsage(); return { rss: m.rss, heap: m.heapUsed, ab: m.arrayBuffers }; };
process.on('message', (msg) => { if (msg === 'measure') out({ measured: true, ...snapshot() }); });
client.on('agentStatus', (s) => {
  if (s !== 'started') return;
  const m = snapshot();
  base = m.rss;
  peak = base;
  out({ started: true, base, baseline: m });
});
client.start();
`;

function spawnChild(t, socketPath, transport, maxFrameBytes) {
  const child = spawn(process.execPath, ['--expose-gc', '--no-concurrent-array-buffer-sweeping', '-e', CHILD, socketPath, transport, String(maxFrameBytes)], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    // glibc: serve blocks of 32 KiB and more with mmap, so memory freed by a GC leaves RSS at once and
    // RSS measures what is held rather than what the allocator keeps around (ignored elsewhere).
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '32768' },
  });
  const messages = [];
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    let nl;
    while ((nl = stdout.indexOf('\n')) >= 0) {
      messages.push(JSON.parse(stdout.slice(0, nl)));
      stdout = stdout.slice(nl + 1);
    }
  });
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => child.kill());
  return { child, messages, exited, stderr: () => stderr };
}

/** A simulator and an SDK linked to it whose 'cmd' callback collects its params in `got`. */
async function linkedWithCmd(t, transport) {
  const sim = await startSim(t);
  const client = makeSDK(t, transport, sim.socketPath);
  const got = [];
  client.subscribe('cmd', (p) => got.push(p));
  await startAndWait(client);
  return { sim, client, got };
}

for (const transport of transports()) {
  describe(`hostile agent [${transport}]`, () => {
    it('skips invalid JSON and JSON that is not an object', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);
      await survives(
        sim,
        client,
        () => {
          sim.sendRaw('not json at all\n');
          sim.sendRaw('{"data":\n');
          sim.sendRaw('{"data":{"x":1}}}\n');
          sim.sendRaw("{'single':'quotes'}\n");
          sim.sendRaw('[1]\n"x"\n42\nnull\ntrue\n');
          sim.sendRaw('{"neither":"signal nor data"}\n');
          sim.sendRaw('{"signal":"not an object"}\n');
          sim.sendRaw('{"data":[1,2]}\n');
        },
        12,
      );
    });

    it('skips known signals with malformed values; the handshake still completes by timeout', async (t) => {
      const sim = await startSim(t, { version: null });
      const client = makeSDK(t, transport, sim.socketPath, { handshakeTimeoutMs: 300 });
      const errors = [];
      client.on('protocolError', (e) => errors.push(e));
      const got = [];
      client.subscribe('cmd', (p) => got.push(p));
      client.start();
      await waitFor(() => sim.clients.length === 1 && sim.clients[0].helloFirst, 'the hello');
      sim.sendRaw('{"signal":{"sdkinit":{"version":5}}}\n');
      sim.sendRaw('{"signal":{"sdkinit":{"version":"not.a.version"}}}\n');
      sim.sendRaw('{"signal":{"sdkinit":"1.8.0"}}\n');
      sim.sendRaw('{"signal":{"agentstatus":5}}\n');
      sim.sendRaw('{"signal":{"agentstatus":{"s":"stopping"}}}\n');
      sim.sendRaw('{"signal":{"connectionstatus":null}}\n');
      await waitFor(() => client.statuses.includes('started'), "'started' after the handshake timeout");
      assert.equal(client.agentVersion, null);
      sim.pushCommand('cmd', { ok: 1 });
      await waitFor(() => got.length === 1, 'a command afterwards');
      assert.equal(errors.length, 6, JSON.stringify(errors.map((e) => e.reason)));
      assert.equal(client.stats().framesSkipped, 6);
      assert.deepEqual(client.statuses, ['started']);
      assert.deepEqual(client.connection, []);
    });

    it('skips invalid UTF-8 instead of dispatching a mangled command', async (t) => {
      const { sim, client, got } = await linkedWithCmd(t, transport);
      await survives(
        sim,
        client,
        () => {
          sim.sendRaw(Buffer.from([0xff, 0xfe, 0x7b, 0x7d, 0x0a]));
          sim.sendRaw(Buffer.concat([Buffer.from('{"data":{"cmd":{"s":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}}\n')]));
          // An overlong encoding of '"' and a lone surrogate encoded in UTF-8 are invalid too.
          sim.sendRaw(Buffer.concat([Buffer.from('{"data":{"cmd":{"s":"'), Buffer.from([0xc0, 0xa2]), Buffer.from('"}}}\n')]));
          sim.sendRaw(Buffer.concat([Buffer.from('{"data":{"cmd":{"s":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}}}\n')]));
        },
        4,
      );
      assert.deepEqual(got, []);
    });

    it('skips data frames with zero or several keys', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      const got = [];
      client.subscribe('a', (p) => got.push(['a', p]));
      client.subscribe('b', (p) => got.push(['b', p]));
      await startAndWait(client);
      await survives(
        sim,
        client,
        () => {
          sim.sendRaw('{"data":{}}\n');
          sim.sendRaw('{"data":{"a":1,"b":2}}\n');
        },
        2,
      );
      assert.deepEqual(got, []);
    });

    it('tolerates \\r\\n endings and empty lines', async (t) => {
      const { sim, client, got } = await linkedWithCmd(t, transport);
      await survives(
        sim,
        client,
        () => {
          sim.sendRaw('\n\n\r\n{"data":{"cmd":{"n":1}}}\r\n\n\r\n');
          sim.sendRaw('{"data":{"cmd":{"n":2}}}\r\n');
          sim.sendRaw('{"signal":{"connectionstatus":"connected"}}\r\n');
        },
        0,
      );
      assert.deepEqual(got, [{ n: 1 }, { n: 2 }]);
      assert.deepEqual(client.connection, ['connected']);
    });

    it('reassembles a frame split byte by byte, multi-byte characters included', async (t) => {
      const { sim, client, got } = await linkedWithCmd(t, transport);
      const params = { text: 'caf\u00e9 \u65e5\u672c \u{1F680}', n: 1 };
      await survives(
        sim,
        client,
        async () => {
          await writeByteByByte(sim, Buffer.from(`${JSON.stringify({ data: { cmd: params } })}\r\n`));
          await writeByteByByte(sim, Buffer.from('{"signal":{"connectionstatus":"disconnected"}}\n'));
        },
        0,
      );
      assert.deepEqual(got, [params]);
      assert.deepEqual(client.connection, ['disconnected']);
    });

    it('handles several frames in one write, with a frame cut across writes', async (t) => {
      const { sim, client, got } = await linkedWithCmd(t, transport);
      const frames = [1, 2, 3, 4].map((n) => `{"data":{"cmd":{"n":${n}}}}\n`).join('');
      const cut = frames.length - 10;
      await survives(
        sim,
        client,
        async () => {
          sim.sendRaw(frames.slice(0, cut));
          await waitFor(() => got.length === 3, 'the three complete frames before the rest of the fourth');
          sim.sendRaw(frames.slice(cut) + '{"data":{"cmd":{"n":5}}}\n{"data":{"cmd":{"n":6}}}\n');
        },
        0,
      );
      assert.deepEqual(got.map((p) => p.n), [1, 2, 3, 4, 5, 6]);
    });

    it('forgets a partial line, or an oversize line being skipped, when the connection drops', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { maxFrameBytes: 1024, reconnectIntervalMs: 20 });
      const errors = [];
      client.on('protocolError', (e) => errors.push(e));
      const got = [];
      client.subscribe('cmd', (p) => got.push(p.n));
      await startAndWait(client);
      // Each write ends in a cut frame; the complete command in front of it shows the SDK read the write.
      const tails = ['{"data":{"cmd":{"n":', 'x'.repeat(5000)];
      for (let i = 0; i < tails.length; i++) {
        sim.sendRaw(`{"data":{"cmd":{"n":${i * 10}}}}\n${tails[i]}`);
        await waitFor(() => got.includes(i * 10), `the command before cut #${i + 1}`);
        sim.kill();
        await waitFor(() => client.statuses.filter((s) => s === 'stopped').length === i + 1, `'stopped' #${i + 1}`);
        await sim.listen();
        await waitFor(() => client.statuses.filter((s) => s === 'started').length === i + 2, `'started' #${i + 2}`);
        // Glued to the old tail, this first line of the new connection would be lost.
        sim.pushCommand('cmd', { n: i * 10 + 1 });
        await waitFor(() => got.includes(i * 10 + 1), `the first command on connection #${i + 2}`);
      }
      assert.deepEqual(got, [0, 1, 10, 11]);
      assert.deepEqual(errors, []);
    });

    it('skips a line longer than maxFrameBytes and keeps lines up to that size', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { maxFrameBytes: 1024 });
      const got = [];
      client.subscribe('cmd', (p) => got.push(p.pad.length));
      await startAndWait(client);
      const empty = '{"data":{"cmd":{"pad":""}}}'.length;
      const frameOf = (bytes) => {
        return `{"data":{"cmd":{"pad":"${'p'.repeat(bytes - empty)}"}}}`;
      };
      assert.equal(frameOf(1024).length, 1024);
      const errors = await survives(
        sim,
        client,
        () => {
          sim.sendRaw(`${frameOf(1024)}\n`);
          sim.sendRaw(`${frameOf(1025)}\n`);
          sim.sendRaw(`${frameOf(5000)}\n`);
          sim.sendRaw(`${frameOf(1000)}\n`);
        },
        2,
      );
      assert.deepEqual(got, [1024 - empty, 1000 - empty]);
      assert.ok(errors[0].bytes >= 1025, `reported size ${errors[0].bytes}`);
      assert.ok(errors[1].bytes >= 5000, `reported size ${errors[1].bytes}`);
    });

    it('survives deeply nested JSON (100000 levels)', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      const deep = [];
      client.subscribe('deep', (p) => deep.push(Array.isArray(p)));
      await startAndWait(client);
      const depth = 100_000;
      await survives(
        sim,
        client,
        () => {
          sim.sendRaw(`${'['.repeat(depth)}\n`);
          sim.sendRaw(`${'['.repeat(depth)}${']'.repeat(depth)}\n`);
          sim.sendRaw(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}\n`);
        },
        3,
      );
      // Deep but valid params still make a command (or, if the SDK's parser gives up, a skipped frame).
      const before = client.stats();
      const marker = [];
      client.subscribe('after-deep', (p) => marker.push(p));
      sim.sendRaw(`{"data":{"deep":${'['.repeat(depth)}${']'.repeat(depth)}}}\n`);
      sim.pushCommand('after-deep', {});
      await waitFor(() => marker.length === 1, 'the command after the deep one');
      const after = client.stats();
      assert.equal(deep.length + (after.framesSkipped - before.framesSkipped), 1);
      assert.ok(deep.every(Boolean));
    });

    it('skips a 5 MB line without keeping it in memory, then dispatches the next command', async (t) => {
      const sim = await startSim(t);
      const child = spawnChild(t, sim.socketPath, transport, 1024);
      await waitFor(() => child.messages.some((m) => m.started), "the child SDK's 'started'");
      const socket = sim.clients[0].socket;
      const lineBytes = 5 * MiB;
      await writeLong(socket, lineBytes);
      // Mid-line, after a GC in the child: what the SDK holds of the line is what it retains.
      child.child.send('measure');
      await waitFor(() => child.messages.some((m) => m.measured), "the child's mid-line measurement");
      socket.write('\n');
      sim.pushCommand('marker', {});
      await waitFor(() => child.messages.some((m) => m.done), "the child's report", DEADLINE_MS * 2);
      const { baseline } = child.messages.find((m) => m.started);
      const mid = child.messages.find((m) => m.measured);
      const report = child.messages.find((m) => m.done);
      assert.equal(await child.exited, 0, child.stderr());
      assert.equal(report.protocolErrors, 1);
      assert.equal(report.stats.framesSkipped, 1);
      assert.equal(report.stats.commandsDispatched, 1);
      const mib = (n) => `${(n / MiB).toFixed(1)} MiB`;
      const detail = `baseline ${JSON.stringify(baseline)}, mid-line ${JSON.stringify(mid)}`;
      if (RSS_MEANINGFUL) assert.ok(mid.rss - baseline.rss < lineBytes / 2, `RSS grew by ${mib(mid.rss - baseline.rss)} mid-way through a 5 MiB line: ${detail}`);
      assert.ok(
        mid.ab + mid.heap - baseline.ab - baseline.heap < MiB,
        `the SDK holds ${mib(mid.ab + mid.heap - baseline.ab - baseline.heap)} mid-way through a 5 MiB line: ${detail}`,
      );
    });

    it('dispatches a flood of 20000 commands, in order, with bounded memory', async (t) => {
      const sim = await startSim(t);
      const child = spawnChild(t, sim.socketPath, transport, 1024 * 1024);
      await waitFor(() => child.messages.some((m) => m.started), "the child SDK's 'started'");
      const socket = sim.clients[0].socket;
      const total = 20_000;
      const pad = 'f'.repeat(200);
      for (let i = 0; i < total; i++) {
        if (!socket.write(`{"data":{"flood":{"i":${i},"pad":"${pad}"}}}\n`)) {
          await new Promise((resolve) => socket.once('drain', resolve));
        }
      }
      sim.pushCommand('marker', {});
      await waitFor(() => child.messages.some((m) => m.done), "the child's report", DEADLINE_MS * 2);
      const report = child.messages.find((m) => m.done);
      assert.equal(await child.exited, 0, child.stderr());
      assert.equal(report.flood, total);
      assert.equal(report.ordered, true);
      assert.equal(report.protocolErrors, 0);
      assert.equal(report.stats.commandsDispatched, total + 1);
      const growth = report.peak - report.base;
      const { baseline } = child.messages.find((m) => m.started);
      // About 4.5 MB went through; a generous bound that still catches keeping every frame.
      if (RSS_MEANINGFUL) assert.ok(growth < 32 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB during the flood`);
      const retained = report.after.heap + report.after.ab - baseline.heap - baseline.ab;
      assert.ok(retained < 2 * MiB, `${(retained / MiB).toFixed(1)} MiB still held after the flood and a GC`);
    });
  });
}
