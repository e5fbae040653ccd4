// The agent simulator against an independent raw client built on node:net (not the SDK).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { AgentSimulator, DEFAULT_SOCKET_PATH } = require('../dist/sim/index.js');
const cli = require('../dist/sim/cli.js');

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'iottly-agent-sim.js');
const SLOWDOWN = Number(process.env.IOTTLY_TEST_SLOWDOWN || 1);
const DEADLINE = 10_000 * SLOWDOWN;

const HELLO = (name = 'app', version = '1.3.0') => ({ signal: { sdkclient: { name, status: 'connected', version } } });
const GOODBYE = (name = 'app') => ({ signal: { sdkclient: { name, status: 'disconnected' } } });
const TELEMETRY = (payload, channel, name = 'app') => ({
  data: channel === undefined ? { sdkclient: { name }, payload } : { sdkclient: { name }, payload, channel },
});
const line = (obj) => `${JSON.stringify(obj)}\n`;

async function waitFor(pred, what, timeoutMs = DEADLINE) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iottly-sim-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function startSim(t, options = {}) {
  const socketPath = options.socketPath ?? path.join(tempDir(t), 'agent.sock');
  const sim = new AgentSimulator({ socketPath, ...options });
  await sim.listen();
  t.after(() => sim.close());
  return sim;
}

/** A minimal SDK stand-in: raw bytes out, parsed agent frames in. */
class RawClient {
  constructor(socket) {
    this.socket = socket;
    this.lines = [];
    this.frames = [];
    this.closed = false;
    this.buf = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) !== -1) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        this.lines.push(l);
        try {
          this.frames.push(JSON.parse(l));
        } catch {
          this.frames.push({ unparsable: l });
        }
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static connect(t, socketPath) {
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath);
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        const c = new RawClient(s);
        t?.after(() => s.destroy());
        resolve(c);
      });
    });
  }

  write(data) {
    this.socket.write(data);
  }
  send(obj) {
    this.socket.write(line(obj));
  }
  has(pred) {
    return this.frames.some(pred);
  }
}

const isSdkinit = (f) => f.signal?.sdkinit !== undefined;

async function connectAndHello(t, sim, name = 'app') {
  const c = await RawClient.connect(t, sim.socketPath);
  c.send(HELLO(name));
  return c;
}

// ---- handshake ----------------------------------------------------------------------------

test('creates missing directories, answers a hello with sdkinit 1.8.0 and records the client', async (t) => {
  const socketPath = path.join(tempDir(t), 'a', 'b', 'agent.sock');
  const sim = await startSim(t, { socketPath });
  assert.equal(sim.listening, true);
  assert.equal(sim.socketPath, socketPath);
  assert.ok(fs.lstatSync(socketPath).isSocket());

  const seen = [];
  sim.on('connection', (c) => seen.push(['connection', c.id]));
  sim.on('hello', (c, frame) => seen.push(['hello', c.name, frame.signal.sdkclient.version]));
  const c = await connectAndHello(t, sim, 'my "quoted" app');
  await waitFor(() => c.frames.length >= 1, 'sdkinit');
  assert.deepEqual(c.frames[0], { signal: { sdkinit: { version: '1.8.0' } } });
  assert.equal(c.lines[0], '{"signal":{"sdkinit":{"version":"1.8.0"}}}');

  assert.equal(sim.clients.length, 1);
  const client = sim.clients[0];
  assert.equal(client.name, 'my "quoted" app');
  assert.equal(client.sdkVersion, '1.3.0');
  assert.equal(client.helloFirst, true);
  assert.equal(typeof client.id, 'number');
  assert.ok(client.socket instanceof net.Socket);
  assert.deepEqual(seen, [
    ['connection', client.id],
    ['hello', 'my "quoted" app', '1.3.0'],
  ]);
  assert.equal(sim.counts.connections, 1);
  assert.equal(sim.counts.hellos, 1);
  assert.equal(sim.frames.length, 1);
  assert.equal(sim.frames[0].client, client);
});

test('sdkinit honours version, delay and connectionStatusOnHello, in that order', async (t) => {
  const sim = await startSim(t, { version: '2.0.1', sdkinitDelayMs: 150, connectionStatusOnHello: 'disconnected' });
  const c = await RawClient.connect(t, sim.socketPath);
  const t0 = Date.now();
  c.send(HELLO());
  await waitFor(() => c.frames.length >= 2, 'sdkinit and connectionstatus');
  assert.ok(Date.now() - t0 >= 100, 'sdkinit came before the configured delay');
  assert.deepEqual(c.frames, [
    { signal: { sdkinit: { version: '2.0.1' } } },
    { signal: { connectionstatus: 'disconnected' } },
  ]);
});

test('version null models a pre-1.8 agent: no sdkinit, connectionstatus still sent when configured', async (t) => {
  const quiet = await startSim(t, { version: null });
  const a = await connectAndHello(t, quiet);
  await waitFor(() => quiet.counts.hellos === 1, 'hello');
  quiet.sendAgentStatus('marker');
  await waitFor(() => a.frames.length >= 1, 'marker');
  assert.deepEqual(a.frames, [{ signal: { agentstatus: 'marker' } }]);

  const withStatus = await startSim(t, { version: null, connectionStatusOnHello: 'connected' });
  const b = await connectAndHello(t, withStatus);
  await waitFor(() => b.frames.length >= 1, 'connectionstatus');
  withStatus.sendAgentStatus('marker');
  await waitFor(() => b.frames.length >= 2, 'marker');
  assert.deepEqual(b.frames, [{ signal: { connectionstatus: 'connected' } }, { signal: { agentstatus: 'marker' } }]);
});

test('helloFirst is false when something precedes the hello, and the hello is still answered', async (t) => {
  const sim = await startSim(t);
  const c = await RawClient.connect(t, sim.socketPath);
  c.write(line(TELEMETRY({ early: true })) + line(HELLO()));
  await waitFor(() => c.has(isSdkinit), 'sdkinit');
  const [client] = sim.clients;
  assert.equal(client.helloFirst, false);
  assert.equal(client.name, 'app');
  assert.equal(sim.counts.telemetry, 1);
});

// ---- inbound parsing ----------------------------------------------------------------------

test('recognises telemetry, channels, calls, error reports and goodbye, with events', async (t) => {
  const sim = await startSim(t);
  const events = [];
  sim.on('telemetry', (r) => events.push(['telemetry', r.name, r.payload, r.channel]));
  sim.on('call', (r) => events.push(['call', r.name, r.cmd, r.args]));
  sim.on('sdkError', (r) => events.push(['sdkError', r.name, r.type, r.msg]));
  sim.on('goodbye', (c) => events.push(['goodbye', c.name]));
  sim.on('disconnect', (c) => events.push(['disconnect', c.name]));
  const frameEvents = [];
  sim.on('frame', (client, frame, raw) => frameEvents.push({ client, frame, raw }));

  const c = await connectAndHello(t, sim);
  c.send(TELEMETRY({ t: 21.5 }));
  c.send(TELEMETRY({ t: 22 }, 'temps'));
  c.send({ signal: { sdkclient: { name: 'app', call: { 'restart-service': { svc: 'x' } } } } });
  c.send({ signal: { sdkclient: { name: 'app', error: { type: 'TypeError', msg: 'boom' } } } });
  c.send(GOODBYE());
  c.socket.end();
  await waitFor(() => c.closed && events.length === 6, 'all events and the disconnect');

  assert.deepEqual(events, [
    ['telemetry', 'app', { t: 21.5 }, undefined],
    ['telemetry', 'app', { t: 22 }, 'temps'],
    ['call', 'app', 'restart-service', { svc: 'x' }],
    ['sdkError', 'app', 'TypeError', 'boom'],
    ['goodbye', 'app'],
    ['disconnect', 'app'],
  ]);

  assert.equal(sim.telemetry.length, 2);
  assert.equal(sim.telemetry[0].raw, JSON.stringify(TELEMETRY({ t: 21.5 })));
  assert.equal('channel' in sim.telemetry[0], false);
  assert.equal(sim.telemetry[1].channel, 'temps');
  assert.deepEqual(
    sim.calls.map((r) => [r.name, r.cmd, r.args]),
    [['app', 'restart-service', { svc: 'x' }]],
  );
  assert.deepEqual(
    sim.errors.map((r) => [r.name, r.type, r.msg]),
    [['app', 'TypeError', 'boom']],
  );
  assert.equal(sim.frames.length, 6);
  assert.equal(frameEvents.length, 6);
  assert.equal(frameEvents[1].raw, JSON.stringify(TELEMETRY({ t: 21.5 })));
  assert.deepEqual(sim.invalid, []);
  const { counts } = sim;
  assert.deepEqual(
    { ...counts, bytes: 0 },
    { connections: 1, hellos: 1, goodbyes: 1, telemetry: 2, calls: 1, errors: 1, invalid: 0, bytes: 0 },
  );
  assert.equal(sim.clients.length, 0);
});

test('frames split across reads (even inside a UTF-8 character), CRLF, blank lines, many per read', async (t) => {
  const sim = await startSim(t);
  const c = await connectAndHello(t, sim);
  await waitFor(() => c.has(isSdkinit), 'sdkinit');

  // Force separate reads: write a piece, wait until the simulator has counted its bytes.
  let sent = sim.counts.bytes;
  const piece = async (buf) => {
    c.write(buf);
    sent += buf.length;
    await waitFor(() => sim.counts.bytes >= sent, 'bytes to arrive');
  };
  const euro = Buffer.from(line(TELEMETRY({ price: '12 €', emoji: '🚀' })));
  const cut = euro.indexOf(Buffer.from('€')) + 1; // between the bytes of the euro sign
  await piece(euro.subarray(0, cut));
  await piece(euro.subarray(cut, euro.length - 1));
  await piece(euro.subarray(euro.length - 1)); // the newline alone

  const crlf = Buffer.from(`${JSON.stringify(TELEMETRY({ n: 2 }))}\r\n`);
  await piece(crlf.subarray(0, crlf.length - 1)); // ...up to and including the \r
  await piece(crlf.subarray(crlf.length - 1));

  // Many frames and blank lines in one write, the last one split from its tail.
  let burst = '\n\r\n   \n';
  for (let i = 0; i < 50; i++) burst += i % 2 ? line(TELEMETRY({ i })) : `${JSON.stringify(TELEMETRY({ i }))}\r\n`;
  burst += '{"data":{"sdkclient":{"name":"app"},"pay';
  await piece(Buffer.from(burst));
  await piece(Buffer.from('load":{"last":true}}}\n\n'));

  await waitFor(() => sim.counts.telemetry === 53, '53 telemetry frames');
  assert.deepEqual(sim.invalid, []);
  assert.deepEqual(sim.telemetry[0].payload, { price: '12 €', emoji: '🚀' });
  assert.deepEqual(sim.telemetry[1].payload, { n: 2 });
  assert.equal(sim.telemetry[1].raw.endsWith('\r'), false);
  assert.deepEqual(
    sim.telemetry.slice(2, 52).map((r) => r.payload.i),
    Array.from({ length: 50 }, (_, i) => i),
  );
  assert.deepEqual(sim.telemetry[52].payload, { last: true });
});

test('a large frame arriving in many reads is reassembled', async (t) => {
  const sim = await startSim(t);
  const c = await connectAndHello(t, sim);
  const big = 'x'.repeat(3 * 1024 * 1024);
  c.send(TELEMETRY({ big }));
  c.send(TELEMETRY({ after: 1 }));
  await waitFor(() => sim.counts.telemetry === 2, 'both frames');
  assert.equal(sim.telemetry[0].payload.big.length, big.length);
  assert.deepEqual(sim.telemetry[1].payload, { after: 1 });
});

test('invalid frames are counted with a reason and the connection carries on', async (t) => {
  const sim = await startSim(t);
  const reasons = [];
  sim.on('invalid', (client, raw, reason) => reasons.push(reason));
  const c = await connectAndHello(t, sim);
  const cases = [
    ['nope', /^invalid JSON/],
    ['[1,2]', /^not a JSON object/],
    ['42', /^not a JSON object/],
    ['null', /^not a JSON object/],
    ['{"hello":1}', /^unrecognised frame/],
    ['{"signal":{"agentstatus":"x"}}', /^unknown signal/],
    ['{"signal":"x"}', /^signal is not an object/],
    ['{"data":{"sdkclient":{"name":"app"}}}', /^telemetry: missing data.payload/],
    ['{"data":{"sdkclient":{"name":"app"},"payload":[1]}}', /^telemetry: data.payload is not an object/],
    ['{"data":{"sdkclient":{"name":"app"},"payload":{},"channel":5}}', /^telemetry: data.channel is not a string/],
    ['{"data":{"payload":{}}}', /^telemetry: missing data.sdkclient.name/],
    ['{"data":{"cmd":{}}}', /^telemetry: missing data.sdkclient.name/],
    ['{"signal":{"sdkclient":{"name":"app","call":{}}}}', /^call:/],
    ['{"signal":{"sdkclient":{"name":"app","call":{"a":1,"b":2}}}}', /^call:/],
    ['{"signal":{"sdkclient":{"name":"app","error":{"type":1,"msg":"m"}}}}', /^error:/],
    ['{"signal":{"sdkclient":{"name":"app","status":"sleepy"}}}', /^sdkclient: unknown status/],
    ['{"signal":{"sdkclient":{"status":"connected"}}}', /^sdkclient signal without a name/],
    ['{"signal":{"sdkclient":{"name":"app"}}}', /^sdkclient signal with neither/],
    ['{"data":{"sdkclient":{"name":"a"},"payload":{}},"signal":{}}', /^frame has both/],
  ];
  c.write(cases.map(([raw]) => `${raw}\n`).join(''));
  c.send(TELEMETRY({ still: 'alive' }));
  await waitFor(() => sim.counts.telemetry === 1, 'the valid frame after the invalid ones');
  assert.equal(sim.counts.invalid, cases.length);
  assert.equal(sim.invalid.length, cases.length);
  cases.forEach(([raw, re], i) => {
    assert.equal(sim.invalid[i].raw, raw);
    assert.match(sim.invalid[i].reason, re, `case ${raw}`);
    assert.equal(reasons[i], sim.invalid[i].reason);
  });
  assert.equal(sim.clients.length, 1);
  assert.equal(c.closed, false);
  assert.equal(sim.clients[0].helloFirst, true);
});

test('invalid UTF-8 is rejected per frame, whether the frame is whole or split', async (t) => {
  const sim = await startSim(t);
  const c = await connectAndHello(t, sim);
  const bad = Buffer.concat([Buffer.from('{"data":{"sdkclient":{"name":"app"},"payload":{"s":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}}\n')]);
  c.write(Buffer.concat([bad, Buffer.from(line(TELEMETRY({ ok: 1 })))]));
  await waitFor(() => sim.counts.telemetry === 1 && sim.counts.invalid === 1, 'one valid, one invalid');
  assert.equal(sim.invalid[0].reason, 'invalid UTF-8');

  let sent = sim.counts.bytes;
  for (const part of [bad.subarray(0, 30), bad.subarray(30)]) {
    c.write(part);
    sent += part.length;
    await waitFor(() => sim.counts.bytes >= sent, 'bytes to arrive');
  }
  c.send(TELEMETRY({ ok: 2 }));
  await waitFor(() => sim.counts.telemetry === 2, 'the frame after');
  assert.equal(sim.counts.invalid, 2);
  assert.equal(sim.invalid[1].reason, 'invalid UTF-8');
});

test('frames over maxFrameBytes are skipped and counted, in one read or across reads', async (t) => {
  const sim = await startSim(t, { maxFrameBytes: 200 });
  const c = await connectAndHello(t, sim);
  const huge = line(TELEMETRY({ pad: 'y'.repeat(500) }));
  c.write(huge + line(TELEMETRY({ n: 1 })));
  await waitFor(() => sim.counts.telemetry === 1, 'the frame after the oversized one');
  assert.equal(sim.counts.invalid, 1);
  assert.match(sim.invalid[0].reason, /^oversized/);
  assert.ok(sim.invalid[0].raw.length < 300, 'the raw of an oversized frame is only a preview');

  let sent = sim.counts.bytes;
  for (let i = 0; i < huge.length; i += 60) {
    const part = huge.slice(i, i + 60);
    c.write(part);
    sent += part.length;
    await waitFor(() => sim.counts.bytes >= sent, 'bytes to arrive');
  }
  c.send(TELEMETRY({ n: 2 }));
  await waitFor(() => sim.counts.telemetry === 2, 'the frame after the split oversized one');
  assert.equal(sim.counts.invalid, 2);
  assert.match(sim.invalid[1].reason, /^oversized/);
  // exactly maxFrameBytes is fine
  const exact = JSON.stringify(TELEMETRY({ p: '' }));
  const fill = 200 - exact.length;
  c.send(TELEMETRY({ p: 'z'.repeat(fill) }));
  await waitFor(() => sim.counts.telemetry === 3, 'a frame of exactly maxFrameBytes');
  assert.equal(sim.counts.invalid, 2);
});

test('a frame cut off by the peer closing is counted as truncated', async (t) => {
  const sim = await startSim(t);
  const c = await connectAndHello(t, sim);
  c.write(line(TELEMETRY({ n: 1 })) + '{"data":{"sdkclient":{"name":"app"},"payload":{"n":2}}}');
  c.socket.end();
  await waitFor(() => sim.counts.invalid === 1, 'the truncated frame');
  assert.equal(sim.counts.telemetry, 1);
  assert.match(sim.invalid[0].reason, /^truncated/);
  assert.equal(sim.invalid[0].raw, '{"data":{"sdkclient":{"name":"app"},"payload":{"n":2}}}');

  // trailing blank bytes at EOF are not a frame
  const d = await connectAndHello(t, sim);
  d.write('\r');
  d.socket.end();
  await waitFor(() => d.closed && sim.clients.length === 0, 'close');
  assert.equal(sim.counts.invalid, 1);
});

test('keepFrames false keeps counts only and handles a large stream', async (t) => {
  const sim = await startSim(t, { keepFrames: false });
  const c = await connectAndHello(t, sim);
  await waitFor(() => c.has(isSdkinit), 'sdkinit');
  const N = 200_000;
  const one = (i) => `{"data":{"sdkclient":{"name":"bench-app"},"payload":{"seq":${i},"temp":21.5,"hum":40,"ok":true,"tag":"abcdefgh"}}}\n`;
  let total = Buffer.byteLength(line(HELLO()));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i += 1000) {
    let s = '';
    for (let j = i; j < i + 1000; j++) s += one(j);
    total += Buffer.byteLength(s);
    if (!c.socket.write(s)) await new Promise((r) => c.socket.once('drain', r));
  }
  await waitFor(() => sim.counts.telemetry === N, `${N} telemetry frames`, DEADLINE * 3);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  t.diagnostic(`${N} frames in ${secs.toFixed(3)} s (${Math.round(N / secs)} frames/s, informational)`);
  assert.equal(sim.counts.bytes, total);
  assert.equal(sim.counts.invalid, 0);
  assert.equal(sim.frames.length, 0);
  assert.equal(sim.telemetry.length, 0);
  assert.equal(sim.counts.hellos, 1);
});

test('the keepFrames:false fast path judges every frame exactly as the full parser does', async (t) => {
  // Differential check: the same mutated corpus goes to a lean simulator (byte-level fast path)
  // and to a keeping one (JSON.parse for everything); counts and invalid frames must agree.
  let seed = 0x1077;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const pick = (arr) => arr[Math.floor(rand() * arr.length)];
  const deep = `{"data":{"sdkclient":{"name":"d"},"payload":{"x":${'['.repeat(80)}${']'.repeat(80)}}}}`;
  const bases = [
    '{"data":{"sdkclient":{"name":"app"},"payload":{"t":21.5}}}',
    '{"data":{"sdkclient":{"name":"a\\"pp","v":[1,2,{"x":null}]},"payload":{"s":"é\\u00e9\\n\\/","n":-1.5e+10,"b":[true,false,null],"o":{}},"channel":"ch"}}',
    ' { "data" : { "payload" : { "deep" : [[[[]]]] } , "sdkclient" : { "name" : "" } , "extra" : 0 } } ',
    '{"data":{"sdkclient":{"name":"app"},"payload":{"a":0,"b":-0,"c":1E5,"d":0.5e-3}},"x":1}',
    '{"signal":{"sdkclient":{"name":"app","status":"connected","version":"1.3.0"}}}',
    '{"data":{"sdkclient":{"name":"app"},"payload":{"k":"v"},"channel":"c","payload":{"k":1}}}',
    '{"data":{"sdkclient":{"name":"app","name":5},"payload":{}}}',
    '{"data":{"sdk\\u0063lient":{"name":"app"},"payload":{}}}',
    '{"data":{"sdkclient":{"n\\u0061me":1,"name":"x"},"payload":{}},"data":{"payload":{}}}',
    '{"data":{"sdkclient":{"name":"app"},"payload":{"\\ud83d\\ude80":"🚀","u":"\\uD800"}}}',
    '{"data":{"sdkclient":{"namex":"app"},"payload":{}}}',
    '{"data":{"sdkclient":{"name":"app"},"payloads":{},"channel":"c"}}',
    '{"data":{"sdkclients":{"name":"app"},"payload":{}}}',
    '{"datas":{"sdkclient":{"name":"app"},"payload":{}}}',
    '{"data":{"sdkclient":{"name":"app"},"payload":{},"channe":7}}',
    deep,
  ].map((x) => Buffer.from(x));
  const alphabet = [...'{}[]":,\\ 0123456789-+.eEtrufalsn\t\r/u'].map((ch) => ch.charCodeAt(0)).concat([0x01, 0x7f, 0xc3, 0xa9, 0xff]);
  const mutate = (buf) => {
    let b = Buffer.from(buf);
    const n = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < n; k++) {
      const i = Math.floor(rand() * b.length);
      const op = rand();
      if (op < 0.3) b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
      else if (op < 0.6) b = Buffer.concat([b.subarray(0, i), Buffer.from([pick(alphabet)]), b.subarray(i)]);
      else if (op < 0.85) b[i] = pick(alphabet);
      else {
        const j = i + Math.floor(rand() * 12);
        b = Buffer.concat([b.subarray(0, j), b.subarray(i, j), b.subarray(j)]);
      }
    }
    return b;
  };
  const corpus = [];
  for (let i = 0; i < 30_000; i++) {
    const base = pick(bases);
    corpus.push(rand() < 0.25 ? base : mutate(base), Buffer.from(rand() < 0.1 ? '\r\n' : '\n'));
  }
  const stream = Buffer.concat([Buffer.from(line(HELLO())), ...corpus]);

  const lean = await startSim(t, { keepFrames: false });
  const full = await startSim(t, { keepFrames: true });
  const leanInvalid = [];
  lean.on('invalid', (client, raw, reason) => leanInvalid.push(`${reason} | ${raw}`));
  for (const sim of [lean, full]) {
    const c = await RawClient.connect(t, sim.socketPath);
    c.write(stream);
    c.socket.end();
    await waitFor(() => c.closed && sim.clients.length === 0, 'the corpus to be read', DEADLINE * 3);
    assert.equal(sim.counts.bytes, stream.length);
  }
  const { telemetry, invalid } = full.counts;
  t.diagnostic(`corpus: ${telemetry} telemetry, ${invalid} invalid, ${full.counts.hellos} hellos`);
  assert.ok(telemetry > 5000 && invalid > 5000, 'the corpus mixes valid and invalid frames');
  assert.deepEqual(leanInvalid, full.invalid.map((r) => `${r.reason} | ${r.raw}`));
  assert.deepEqual(lean.counts, full.counts);
});

test('clearRecords empties the records but not the counts', async (t) => {
  const sim = await startSim(t);
  const c = await connectAndHello(t, sim);
  c.send(TELEMETRY({ a: 1 }));
  c.write('junk\n');
  await waitFor(() => sim.counts.telemetry === 1 && sim.counts.invalid === 1, 'frames');
  const old = sim.telemetry;
  sim.clearRecords();
  assert.equal(sim.frames.length, 0);
  assert.equal(sim.telemetry.length, 0);
  assert.equal(sim.invalid.length, 0);
  assert.equal(old.length, 1, 'a record array taken earlier is a snapshot');
  assert.equal(sim.counts.telemetry, 1);
  assert.equal(sim.counts.invalid, 1);
});

// ---- outbound -----------------------------------------------------------------------------

test('pushCommand, sendAgentStatus, sendConnectionStatus, sendSdkinit and sendRaw reach all or one client', async (t) => {
  const sim = await startSim(t);
  const a = await connectAndHello(t, sim, 'a');
  const b = await connectAndHello(t, sim, 'b');
  await waitFor(() => a.has(isSdkinit) && b.has(isSdkinit), 'both handshakes');
  a.frames.length = 0;
  b.frames.length = 0;
  a.lines.length = 0;
  b.lines.length = 0;

  const clientA = sim.clients.find((c) => c.name === 'a');
  assert.equal(sim.pushCommand('restart', { delay: 5 }), 2);
  assert.equal(sim.sendAgentStatus('stopping', clientA), 1);
  assert.equal(sim.sendConnectionStatus('disconnected'), 2);
  assert.equal(sim.sendSdkinit('1.9.0', clientA), 1);
  assert.equal(sim.pushCommand('noargs'), 2);
  assert.equal(sim.pushCommand('__proto__', { x: 1 }, clientA), 1);
  assert.equal(sim.sendRaw(Buffer.from('not json\n'), clientA), 1);
  assert.equal(sim.sendRaw('{"data":{}}\n'), 2);

  await waitFor(() => a.lines.length === 8 && b.lines.length === 4, 'every frame');
  assert.deepEqual(a.lines, [
    '{"data":{"restart":{"delay":5}}}',
    '{"signal":{"agentstatus":"stopping"}}',
    '{"signal":{"connectionstatus":"disconnected"}}',
    '{"signal":{"sdkinit":{"version":"1.9.0"}}}',
    '{"data":{"noargs":{}}}',
    '{"data":{"__proto__":{"x":1}}}',
    'not json',
    '{"data":{}}',
  ]);
  assert.deepEqual(b.lines, [
    '{"data":{"restart":{"delay":5}}}',
    '{"signal":{"connectionstatus":"disconnected"}}',
    '{"data":{"noargs":{}}}',
    '{"data":{}}',
  ]);

  a.socket.destroy();
  await waitFor(() => sim.clients.length === 1, 'a to go');
  assert.equal(sim.pushCommand('x', {}, clientA), 0, 'a disconnected client gets nothing');
  assert.equal(sim.pushCommand('x', {}), 1);
  assert.throws(() => sim.sendConnectionStatus('sideways'), TypeError);
});

test('flapMqtt reports MQTT down, then up after downMs', async (t) => {
  const sim = await startSim(t);
  const c = await connectAndHello(t, sim);
  await waitFor(() => c.has(isSdkinit), 'sdkinit');
  let downSeen = null;
  const t0 = Date.now();
  const flap = sim.flapMqtt(120);
  await waitFor(() => c.frames.length >= 2, 'MQTT down');
  downSeen = c.frames.length === 2 && c.frames[1].signal?.connectionstatus === 'disconnected';
  await flap;
  assert.ok(Date.now() - t0 >= 100, 'flapMqtt resolved before downMs');
  await waitFor(() => c.frames.length === 3, 'MQTT up');
  assert.equal(downSeen, true);
  assert.deepEqual(c.frames.slice(1), [
    { signal: { connectionstatus: 'disconnected' } },
    { signal: { connectionstatus: 'connected' } },
  ]);
});

// ---- lifecycle ----------------------------------------------------------------------------

test('reboot: "stopping", reads until quiet, drops, unlinks, comes back; records are kept', async (t) => {
  const sim = await startSim(t);
  const c = await connectAndHello(t, sim);
  await waitFor(() => c.has(isSdkinit), 'sdkinit');
  // Like an SDK flushing on "stopping": answer with a few last frames.
  c.socket.on('data', () => {
    if (c.has((f) => f.signal?.agentstatus === 'stopping') && !c.flushed) {
      c.flushed = true;
      for (let i = 0; i < 3; i++) c.send(TELEMETRY({ last: i }));
      c.send(GOODBYE());
    }
  });
  let duringDown = null;
  sim.once('disconnect', () => {
    duringDown = { file: fs.existsSync(sim.socketPath), listening: sim.listening };
  });
  await sim.reboot({ downMs: 200, quietMs: 50 });
  await waitFor(() => c.closed, 'the client to see the drop');
  assert.deepEqual(duringDown, { file: false, listening: false }, 'the socket is gone while the agent is down');
  assert.equal(sim.listening, true);
  assert.ok(fs.lstatSync(sim.socketPath).isSocket());
  assert.equal(sim.counts.telemetry, 3, 'frames sent after "stopping" were read before going down');
  assert.equal(sim.counts.goodbyes, 1);

  const again = await connectAndHello(t, sim);
  await waitFor(() => again.has(isSdkinit), 'sdkinit after the reboot');
  assert.equal(sim.counts.connections, 2);
  assert.equal(sim.counts.hellos, 2);
  assert.equal(sim.telemetry.length, 3);
  assert.ok(sim.clients[0].id > 1);
});

test('reboot does not wait forever for a client that never pauses', async (t) => {
  const sim = await startSim(t, { keepFrames: false });
  const c = await connectAndHello(t, sim);
  const chatter = setInterval(() => c.send(TELEMETRY({ x: 1 })), 2);
  t.after(() => clearInterval(chatter));
  await sim.reboot({ downMs: 20, quietMs: 100, maxWaitMs: 300 });
  clearInterval(chatter);
  assert.equal(sim.listening, true);
  await waitFor(() => c.closed, 'the chatty client to be dropped');
});

test('close() during a reboot keeps the simulator down', async (t) => {
  const sim = await startSim(t);
  const c = await connectAndHello(t, sim);
  await waitFor(() => c.has(isSdkinit), 'sdkinit');
  const rebooting = sim.reboot({ downMs: 300, quietMs: 10 });
  await waitFor(() => c.closed, 'the reboot to drop the client');
  await sim.close();
  await rebooting;
  assert.equal(sim.listening, false);
  assert.equal(fs.existsSync(sim.socketPath), false);
});

test('kill: drops everything at once, no "stopping", socket removed; listen works again', async (t) => {
  const sim = await startSim(t);
  const c = await connectAndHello(t, sim);
  await waitFor(() => c.has(isSdkinit), 'sdkinit');
  sim.kill();
  assert.equal(sim.listening, false);
  assert.equal(sim.clients.length, 0);
  assert.equal(fs.existsSync(sim.socketPath), false);
  await waitFor(() => c.closed, 'the connection to drop');
  assert.equal(c.frames.length, 1, 'nothing but the sdkinit arrived');
  await assert.rejects(RawClient.connect(null, sim.socketPath), { code: 'ENOENT' });

  await sim.listen();
  const d = await connectAndHello(t, sim);
  await waitFor(() => d.has(isSdkinit), 'sdkinit after the restart');
});

test('close is idempotent, drops clients and removes the socket; listen after close works', async (t) => {
  const sim = await startSim(t);
  const c = await connectAndHello(t, sim);
  await waitFor(() => c.has(isSdkinit), 'sdkinit');
  const disconnects = [];
  sim.on('disconnect', (cl) => disconnects.push(cl.id));
  await Promise.all([sim.close(), sim.close()]);
  await sim.close();
  assert.equal(sim.listening, false);
  assert.equal(fs.existsSync(sim.socketPath), false);
  assert.equal(disconnects.length, 1);
  await waitFor(() => c.closed, 'the client to see the close');
  assert.equal(sim.counts.invalid, 0, 'our own close is not a truncated frame');
  await sim.listen();
  assert.ok(fs.lstatSync(sim.socketPath).isSocket());
});

test('listen refuses a live agent socket, replaces a stale one, never touches a non-socket', async (t) => {
  const dir = tempDir(t);

  // live: another simulator owns the path
  const livePath = path.join(dir, 'live.sock');
  const owner = await startSim(t, { socketPath: livePath });
  const intruder = new AgentSimulator({ socketPath: livePath });
  await assert.rejects(intruder.listen(), (err) => {
    assert.equal(err.code, 'EADDRINUSE');
    assert.ok(err.message.includes(livePath), err.message);
    return true;
  });
  await intruder.close();
  assert.ok(fs.lstatSync(livePath).isSocket(), 'the live socket is still there');
  const c = await connectAndHello(t, owner);
  await waitFor(() => c.has(isSdkinit), 'the owner still answers');

  // stale: a process that died without cleaning up
  const stalePath = path.join(dir, 'stale.sock');
  const child = spawn(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(stalePath)}, () => process.kill(process.pid, 'SIGKILL'))`,
  ]);
  await new Promise((r) => child.on('exit', r));
  assert.ok(fs.lstatSync(stalePath).isSocket(), 'precondition: a stale socket file');
  const sim = await startSim(t, { socketPath: stalePath });
  const d = await connectAndHello(t, sim);
  await waitFor(() => d.has(isSdkinit), 'sdkinit on the replaced socket');

  // not a socket
  const filePath = path.join(dir, 'file');
  fs.writeFileSync(filePath, 'precious');
  const wrong = new AgentSimulator({ socketPath: filePath });
  await assert.rejects(wrong.listen(), (err) => {
    assert.ok(err.message.includes(filePath) && /not a socket/.test(err.message), err.message);
    return true;
  });
  assert.equal(fs.readFileSync(filePath, 'utf8'), 'precious');
  await wrong.close();
  assert.equal(fs.readFileSync(filePath, 'utf8'), 'precious', 'close does not delete what it did not create');
});

test('waitFor resolves on the predicate and rejects descriptively after the timeout', async (t) => {
  const sim = await startSim(t);
  let flag = false;
  setTimeout(() => {
    flag = true;
  }, 20);
  await sim.waitFor(() => flag, 2000);
  await assert.rejects(sim.waitFor(() => false, 50), /timed out after 50 ms/);
  await assert.rejects(sim.waitFor(() => false, 30, 'the impossible'), /waiting for the impossible/);
});

test('log: a function receives one line per event', async (t) => {
  const lines = [];
  const sim = await startSim(t, { log: (l) => lines.push(l) });
  const c = await connectAndHello(t, sim, 'logged');
  c.send(TELEMETRY({ v: 1 }, 'ch'));
  c.send({ signal: { sdkclient: { name: 'logged', call: { doit: {} } } } });
  c.write('bad\n');
  await waitFor(() => sim.counts.invalid === 1 && sim.counts.calls === 1, 'frames');
  const text = lines.join('\n');
  for (const re of [/listening on/, /connected/, /hello, sdk version 1\.3\.0/, /-> .*sdkinit/, /telemetry \[ch\]/, /call doit/, /invalid frame/]) {
    assert.match(text, re);
  }
});

test('constructor validates its options', () => {
  assert.throws(() => new AgentSimulator({}), TypeError);
  assert.throws(() => new AgentSimulator({ socketPath: '/tmp/x', version: 5 }), /options.version/);
  assert.throws(() => new AgentSimulator({ socketPath: '/tmp/x', sdkinitDelayMs: -1 }), RangeError);
  assert.throws(() => new AgentSimulator({ socketPath: '/tmp/x', maxFrameBytes: 0 }), /maxFrameBytes/);
  assert.throws(() => new AgentSimulator({ socketPath: '/tmp/x', connectionStatusOnHello: 'up' }), TypeError);
  assert.equal(DEFAULT_SOCKET_PATH, '/var/run/iottly.com-agent/sdk/iottly_sdk_socket');
});

// ---- CLI ----------------------------------------------------------------------------------

function runCli(args) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const result = { stdout: '', stderr: '', code: undefined, signal: undefined };
  child.stdout.setEncoding('utf8').on('data', (d) => (result.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (result.stderr += d));
  result.exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      result.code = code;
      result.signal = signal;
      resolve(result);
    }),
  );
  result.child = child;
  return result;
}

test('CLI as a child process: handshake, logs, SIGTERM removes the socket and exits 0', async (t) => {
  const socketPath = path.join(tempDir(t), 'run', 'agent.sock');
  const run = runCli(['--socket', socketPath, '--agent-version', '1.9.2']);
  t.after(() => run.child.kill('SIGKILL'));
  await waitFor(() => run.stdout.includes('listening on') || run.code !== undefined, 'the CLI to listen');
  assert.ok(fs.lstatSync(socketPath).isSocket());

  const c = await RawClient.connect(t, socketPath);
  c.send(HELLO('cli-app'));
  await waitFor(() => c.has(isSdkinit), 'sdkinit from the CLI');
  assert.deepEqual(c.frames[0], { signal: { sdkinit: { version: '1.9.2' } } });
  c.send(TELEMETRY({ v: 1 }));
  c.send({ signal: { sdkclient: { name: 'cli-app', call: { reboot: {} } } } });
  await waitFor(() => run.stdout.includes('call "reboot"'), 'the call to be logged');
  assert.match(run.stdout, /hello, sdk version 1\.3\.0/);
  assert.match(run.stdout, /first telemetry/);

  run.child.kill('SIGTERM');
  const res = await run.exited;
  assert.equal(res.code, 0, res.stderr);
  assert.equal(fs.existsSync(socketPath), false);
  await waitFor(() => c.closed, 'the client to be dropped');
});

test('CLI: bad arguments exit 2 naming the argument; --help exits 0', async () => {
  const bad = await runCli(['--flap-every', 'soon']).exited;
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--flap-every/);
  const unknown = await runCli(['--frobnicate']).exited;
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--frobnicate/);
  const help = await runCli(['--help']).exited;
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: iottly-agent-sim/);
  assert.match(help.stdout, /--no-sdkinit/);

  const errors = [];
  const io = { out: () => {}, err: (l) => errors.push(l), handleSignals: false };
  for (const [args, name] of [
    [['--agent-version', '1.8'], '--agent-version'],
    [['--agent-version', '1.8.0', '--no-sdkinit'], '--no-sdkinit'],
    [['--version', '1.8'], '1.8'],
    [['--command', 'x:{bad'], '--command'],
    [['--command-every', '100'], '--command-every'],
    [['--command', 'ping'], '--command'],
    [['--socket'], '--socket'],
    [['--duration', '-5'], '--duration'],
    [['--quiet=yes'], '--quiet'],
    [['stray'], 'stray'],
  ]) {
    errors.length = 0;
    assert.equal(await cli.main(args, io), 2, args.join(' '));
    assert.ok(errors.join('\n').includes(name), `${args.join(' ')}: ${errors.join(' | ')}`);
  }
  const o = cli.parseArgs(['--socket=/tmp/s', '--no-sdkinit', '--command', 'a:{"b":1}', '--command', 'c', '--command-every', '50']);
  assert.equal(o.socketPath, '/tmp/s');
  assert.equal(o.version, null);
  assert.deepEqual(o.commands, [
    { type: 'a', params: { b: 1 } },
    { type: 'c', params: {} },
  ]);
});

test('CLI: --version prints the package version; --version X.Y.Z still sets the agent version, with a note', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const v = await runCli(['--version']).exited;
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), pkg.version);
  const socketPath = path.join(tempDir(t), 'agent.sock');
  const old = await runCli(['--socket', socketPath, '--version', '1.9.4', '--duration', '50']).exited;
  assert.equal(old.code, 0, old.stderr);
  assert.match(old.stdout, /agent version 1\.9\.4/);
  assert.match(old.stderr, /--version X\.Y\.Z is now spelt --agent-version/);
});

test('CLI: a failed listen is one message, not two; a refused second simulator is no client in the first one\'s log', async (t) => {
  const failed = await runCli(['--socket', '/etc/passwd/agent.sock']).exited;
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /^iottly-agent-sim: cannot listen on \/etc\/passwd\/agent\.sock: /);
  assert.doesNotMatch(failed.stderr, /cannot listen: cannot listen/);

  const socketPath = path.join(tempDir(t), 'agent.sock');
  const first = runCli(['--socket', socketPath]);
  t.after(() => first.child.kill('SIGKILL'));
  await waitFor(() => first.stdout.includes('listening on'), 'the first simulator to listen');
  const second = await runCli(['--socket', socketPath]).exited;
  assert.equal(second.code, 1);
  assert.match(second.stderr, /already listening on/);
  await waitFor(() => first.stdout.includes('closed without sending anything'), 'the probe noted');
  assert.doesNotMatch(first.stdout, /#\d+ connected/);
  first.child.kill('SIGTERM');
  assert.equal((await first.exited).code, 0);
});

test('CLI main in process: pushes commands periodically, flaps, stops on request', async (t) => {
  const socketPath = path.join(tempDir(t), 'agent.sock');
  const out = [];
  const ac = new AbortController();
  const done = cli.main(
    ['--socket', socketPath, '--command', 'ping:{"n":1}', '--command-every', '30', '--flap-every', '40', '--flap-down', '10'],
    { out: (l) => out.push(l), err: (l) => out.push(`ERR ${l}`), handleSignals: false, stop: ac.signal },
  );
  t.after(() => ac.abort());
  await waitFor(() => fs.existsSync(socketPath), 'the socket');
  const c = await connectAndHello(t, { socketPath }, 'app');
  await waitFor(
    () =>
      c.frames.filter((f) => f.data?.ping).length >= 2 &&
      c.has((f) => f.signal?.connectionstatus === 'disconnected') &&
      c.has((f) => f.signal?.connectionstatus === 'connected'),
    'commands and a flap',
  );
  assert.deepEqual(c.frames.find((f) => f.data), { data: { ping: { n: 1 } } });
  ac.abort();
  assert.equal(await done, 0);
  assert.equal(fs.existsSync(socketPath), false);
  assert.ok(out.some((l) => l.includes('-> command "ping"')), out.join('\n'));
});

test('CLI refuses to take over a live agent socket (exit 1, socket untouched)', async (t) => {
  const sim = await startSim(t);
  const errors = [];
  const code = await cli.main(['--socket', sim.socketPath, '--quiet'], {
    out: () => {},
    err: (l) => errors.push(l),
    handleSignals: false,
  });
  assert.equal(code, 1);
  assert.match(errors.join('\n'), /already listening/);
  assert.ok(fs.lstatSync(sim.socketPath).isSocket());
  assert.equal(sim.listening, true);
});
