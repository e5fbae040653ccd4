'use strict';
// Micro-benchmark: telemetry frames as the SDK builds them today against frames written as bytes
// by ShapeSerializer, per payload case. Rounds alternate the two in the same process, and medians
// are reported in ns per frame, with speed-up = A's time / B's time.
//
// (A) today: frame = FRAME_HEAD + JSON.stringify(o) + '}}\n', frames concatenated into a batch
//     string, and Buffer.byteLength(batch) once it reaches 64 KiB (the size the transport needs
//     before it writes; it flattens the batch).
// (B) bytes: w.bytes(head); ser.write(o, w) || w.string(JSON.stringify(o)); w.bytes(tail), the
//     writer's position reset to 0 once it reaches 64 KiB.
// (A+) A, and the batch then encoded into a buffer (utf8Write), as the transport's write does with
//     it (the socket's string write, or the addon's copy): B's bytes need no such step. Shown for
//     context; the speed-up is A / B.
//
// Time is the process's CPU time (process.cpuUsage: user + system, all threads, so background JIT
// and GC work counts), which on a machine shared with other jobs varies far less than wall time.
// Each case runs in a process of its own (an application has one serializer; several in one
// process would make the call sites polymorphic and slow both sides unevenly).
//
// Usage: npm run build && node bench/serializer.js [--quick] [--case-only N]
const { execFileSync } = require('node:child_process');
const { ShapeSerializer } = require('../dist/shape-serializer.js');
const { ByteWriter } = require('../dist/byte-writer.js');

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 5 : 9;
const TARGET_NS = quick ? 50e6 : 150e6; // per timed run

// ---------------------------------------------------------------------------------------------
// Payloads. Each case is an array of objects iterated in order (fresh objects, as an app builds).

const POOL = 4096;
const sites = ['living-room', 'kitchen', 'garage', 'attic'];

function flat(i) {
  return {
    sensor: `temp-${sites[i & 3]}-01`,
    seq: 100000 + i,
    value: 21.5 + (i % 50) / 10,
    unit: 'celsius',
    battery: 3.6 + (i % 20) / 100,
    rssi: -60 - (i % 30),
    ok: i % 7 !== 0,
    ts: 1733000000000 + i * 1000,
  };
}

function nested(i) {
  return {
    id: `dev-${1000 + (i & 255)}`,
    readings: { t: 21.5 + (i % 50) / 10, h: 40 + (i % 40) / 4, p: 1013.25 - (i % 9) / 10 },
    tags: ['site-a', `floor-${i & 3}`, 'hvac'],
    ts: 1733000000000 + i * 1000,
    ok: true,
  };
}

/** Every object a different key list (65,536 of them, far more than are ever remembered). */
function different(i) {
  return { [`k${i}`]: i, sensor: 'temp-01', value: 21.5, [`x${i & 15}`]: 'x', ts: 1733000000000 + i };
}

function numbers(i) {
  const samples = new Array(560);
  for (let j = 0; j < samples.length; j++) samples[j] = Math.round(Math.sin((i + j) / 7) * 100000) / 100;
  return { sensor: 'accel-01', ts: 1733000000000 + i, samples };
}

function doubles(i) {
  const samples = new Array(200);
  let x = (i * 2654435761) % 4294967296;
  for (let j = 0; j < samples.length; j++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    samples[j] = (x / 2147483648) * 1000;
  }
  return { sensor: 'accel-01', ts: 1733000000000 + i, samples };
}

const cases = [
  { name: 'a. flat sensor', make: flat, pool: POOL },
  { name: 'b. nested sensor', make: nested, pool: POOL },
  { name: 'c. all-different shapes (miss path)', make: different, pool: 65536 },
  { name: 'd. 4 KiB of 2-decimal numbers', make: numbers, pool: 256 },
  { name: "d'. 4 KiB of full-precision doubles", make: doubles, pool: 256 },
  { name: 'e. half (a), half (c)', make: (i) => (i & 1 ? flat(i) : different(i)), pool: 65536 },
];

// ---------------------------------------------------------------------------------------------

/** The SDK's telemetry frame around the payload (FrameEncoder.telemetryJson without a channel). */
const FRAME_HEAD = '{"data":{"sdkclient":{"name":"bench-app"},"payload":';
const FRAME_TAIL = '}}\n';
const head = Buffer.from(FRAME_HEAD);
const tail = Buffer.from(FRAME_TAIL);
const BATCH = 65536;
let sink = 0;

/** Where A+ encodes its batches (a batch ends within one frame of BATCH). */
const encoded = Buffer.allocUnsafeSlow(2 * BATCH);

function timeStrings(objs, n, encode) {
  const len = objs.length;
  let batch = '';
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    batch += FRAME_HEAD + JSON.stringify(objs[i % len]) + FRAME_TAIL;
    if (batch.length >= BATCH) {
      sink += Buffer.byteLength(batch);
      if (encode) sink += encoded.utf8Write(batch, 0);
      batch = '';
    }
  }
  const d = process.cpuUsage(t0);
  return ((d.user + d.system) * 1000) / n;
}

function timeBytes(objs, n, ser, w) {
  const len = objs.length;
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const o = objs[i % len];
    w.bytes(head);
    ser.write(o, w) || w.string(JSON.stringify(o));
    w.bytes(tail);
    if (w.pos >= BATCH) {
      sink += w.buf[w.pos - 2];
      w.pos = 0;
    }
  }
  const d = process.cpuUsage(t0);
  return ((d.user + d.system) * 1000) / n;
}

const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function runCase(c) {
  const objs = Array.from({ length: c.pool }, (_, i) => c.make(i));
  const bytes = Math.round(objs.reduce((sum, o) => sum + Buffer.byteLength(JSON.stringify(o)), 0) / objs.length);
  const ser = new ShapeSerializer();
  const w = new ByteWriter(BATCH + 4096);
  // Check the bytes against JSON.stringify's, warm up (JIT and shape learning), and size the runs
  // to about TARGET_NS each.
  for (const o of objs.slice(0, 64)) {
    const start = w.pos;
    if (ser.write(o, w) && !w.buf.subarray(start, w.pos).equals(Buffer.from(JSON.stringify(o)))) {
      throw new Error(`${c.name}: output differs`);
    }
    w.pos = 0;
  }
  timeStrings(objs, 20000, false);
  timeStrings(objs, 20000, true);
  timeBytes(objs, 20000, ser, w);
  const n = Math.max(2000, Math.round(TARGET_NS / timeStrings(objs, 20000, false)));
  const a = [];
  const ae = [];
  const b = [];
  const before = ser.stats();
  // The order rotates from round to round, so that none of the three always runs first.
  const runs = [() => a.push(timeStrings(objs, n, false)), () => b.push(timeBytes(objs, n, ser, w)), () => ae.push(timeStrings(objs, n, true))];
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < runs.length; k++) runs[(r + k) % runs.length]();
  }
  // Served and backed-off shares over the timed rounds only.
  const st = ser.stats();
  const hits = st.hits - before.hits;
  const calls = hits + st.misses - before.misses + st.skipped - before.skipped;
  return { bytes, a: median(a), ae: median(ae), b: median(b), served: hits / calls, skipped: (st.skipped - before.skipped) / calls };
}

const caseArg = process.argv.indexOf('--case');
if (caseArg >= 0) {
  process.stdout.write(JSON.stringify(runCase(cases[Number(process.argv[caseArg + 1])])));
  return;
}

const only = process.argv.indexOf('--case-only');
const chosen = only >= 0 ? [cases[Number(process.argv[only + 1])]] : cases;
const fmt = (x) => x.toFixed(0);
const os = require('node:os');
console.log(`node ${process.version}, V8 ${process.versions.v8}; ${ROUNDS} rounds per case, medians${quick ? ' (--quick)' : ''}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('');
console.log('| case | payload bytes | (A) strings + byteLength ns/op | (B) ByteWriter + ShapeSerializer ns/op | A / B | served | backed off | (A+) A + encode ns/op | A+ / B |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const c of chosen) {
  const args = [__filename, '--case', String(cases.indexOf(c))];
  if (quick) args.push('--quick');
  const r = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' }));
  console.log(
    `| ${c.name} | ${r.bytes} | ${fmt(r.a)} | ${fmt(r.b)} | **${(r.a / r.b).toFixed(2)}x** | ${(r.served * 100).toFixed(0)}% | ${(r.skipped * 100).toFixed(0)}% | ${fmt(r.ae)} | ${(r.ae / r.b).toFixed(2)}x |`,
  );
}
console.log(`load average after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
if (sink === 42) console.log('');
