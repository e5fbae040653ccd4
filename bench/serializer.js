'use strict';
// Micro-benchmark: JSON.stringify against ShapeSerializer (falling back to JSON.stringify when it
// returns undefined, as a caller would) on telemetry-like payloads. Rounds alternate the two, and
// medians are reported in ns per object, with speed-up = JSON.stringify time / ShapeSerializer time.
// Time is the process's CPU time (process.cpuUsage: user + system, all threads, so background JIT
// and GC work counts), which on a machine shared with other jobs varies far less than wall time.
//
// Two ways of consuming the result are timed:
// - "string": the result's length is read (V8 leaves ShapeSerializer's result as a rope of pieces);
// - "frame": the result is embedded in the SDK's telemetry frame and the frame is flattened
//   (charCodeAt), which writing it to a socket would do anyway; this is the fairer comparison.
//
// Each case runs in a process of its own (an application has one serializer; several in one
// process would make the call sites polymorphic and slow both sides unevenly).
//
// Usage: npm run build && node bench/serializer.js [--quick]
const { execFileSync } = require('node:child_process');
const { ShapeSerializer } = require('../dist/shape-serializer.js');

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 9;
const TARGET_NS = quick ? 60e6 : 200e6; // per timed run

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

const head = '{"data":{"sdkclient":{"name":"bench-app"},"payload":';
let sink = 0;

function timeRun(objs, n, serialize, frame) {
  const len = objs.length;
  const t0 = process.cpuUsage();
  if (frame) {
    for (let i = 0; i < n; i++) {
      const f = `${head}${serialize(objs[i % len])}}}\n`;
      sink += f.charCodeAt(f.length - 3);
    }
  } else {
    for (let i = 0; i < n; i++) sink += serialize(objs[i % len]).length;
  }
  const d = process.cpuUsage(t0);
  return ((d.user + d.system) * 1000) / n;
}

const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function runCase(c, frame) {
  const objs = Array.from({ length: c.pool }, (_, i) => c.make(i));
  const bytes = Math.round(objs.reduce((sum, o) => sum + JSON.stringify(o).length, 0) / objs.length);
  const ser = new ShapeSerializer();
  const json = (o) => JSON.stringify(o);
  const shape = (o) => ser.stringify(o) ?? JSON.stringify(o);
  // Check, warm up (JIT and shape learning), and size the runs to about TARGET_NS each.
  for (const o of objs.slice(0, 64)) if (shape(o) !== JSON.stringify(o)) throw new Error(`${c.name}: output differs`);
  timeRun(objs, 20000, json, frame);
  timeRun(objs, 20000, shape, frame);
  const n = Math.max(2000, Math.round(TARGET_NS / timeRun(objs, 20000, json, frame)));
  const j = [];
  const s = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r & 1) {
      s.push(timeRun(objs, n, shape, frame));
      j.push(timeRun(objs, n, json, frame));
    } else {
      j.push(timeRun(objs, n, json, frame));
      s.push(timeRun(objs, n, shape, frame));
    }
  }
  const st = ser.stats();
  const calls = st.hits + st.misses + st.skipped;
  return {
    bytes,
    json: median(j),
    shape: median(s),
    served: st.hits / calls,
    skipped: st.skipped / calls,
  };
}

const caseArg = process.argv.indexOf('--case');
if (caseArg >= 0) {
  const [index, frame] = process.argv[caseArg + 1].split(':').map(Number);
  process.stdout.write(JSON.stringify(runCase(cases[index], frame === 1)));
  return;
}

const fmt = (x) => x.toFixed(0);
console.log(`node ${process.version}, V8 ${process.versions.v8}; ${ROUNDS} rounds per case, medians${quick ? ' (--quick)' : ''}`);
console.log('');
console.log('| case | bytes | consumed as | JSON.stringify ns/op | ShapeSerializer ns/op | speed-up | served | backed off |');
console.log('|---|---:|---|---:|---:|---:|---:|---:|');
for (const c of cases) {
  for (const frame of [false, true]) {
    const args = [__filename, '--case', `${cases.indexOf(c)}:${frame ? 1 : 0}`];
    if (quick) args.push('--quick');
    const r = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' }));
    console.log(
      `| ${c.name} | ${r.bytes} | ${frame ? 'frame' : 'string'} | ${fmt(r.json)} | ${fmt(r.shape)} | ${(r.json / r.shape).toFixed(2)}x | ${(r.served * 100).toFixed(0)}% | ${(r.skipped * 100).toFixed(0)}% |`,
    );
  }
}
if (sink === 42) console.log('');
