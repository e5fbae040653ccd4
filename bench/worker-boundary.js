'use strict';
// What it costs to move a command's params into a piscina worker, and a handler's result back, with
// each candidate encoding. Runnable on its own: `node bench/worker-boundary.js [--quick]`.
//
// The figure that matters for the SDK is main-thread time per task (the event loop the app's
// telemetry timers share), measured as event-loop active time (performance.eventLoopUtilization)
// over a run of tasks, so it includes piscina's own bookkeeping and the message handling; the
// round trip is measured separately, one task at a time, with idle workers.
//
// Params (main -> worker):
//   clone     piscina's default: the params object, structured-cloned by postMessage
//   msgpackr  pack() into a Buffer whose ArrayBuffer is transferred; unpack() in the worker
//   records   the same with a Packr using the record extension (inline record definitions)
//   raw       the command frame's own bytes copied into a transferred ArrayBuffer; JSON.parse in the
//             worker (the main thread parsed the frame already to learn the command type)
// Results (worker -> main): clone, msgpackr, records, json (JSON.stringify in the worker, a string
// across, JSON.parse on the main thread), and payload-json (each telemetry payload stringified in the
// worker; the main thread wraps the text in a frame without parsing it). The object encodings still
// owe a JSON.stringify on the main thread to become a frame, which these figures do not include.
//
// Batches (worker -> main, while a task runs): the worker's parent port (piscina's 'message' event)
// vs a BroadcastChannel, with 2 workers posting at once; main-thread and all-thread CPU per batch.
//
// Transport: none. This measures the thread boundary only; no socket and no SDK instance.

const { isMainThread } = require('node:worker_threads');
// msgpackr is not a dependency of the SDK (it lost here); it is a devDependency so these rows reproduce.
let msgpackr = null;
try {
  msgpackr = require('msgpackr');
} catch {
  console.log('msgpackr is not installed: its rows are skipped (npm install --no-save msgpackr)');
}
const { Packr, pack, unpack } = msgpackr ?? {};
const { Piscina, move } = require('piscina');

const recordsPackr = msgpackr ? new Packr({ useRecords: true }) : null;

function makeParams(kind) {
  if (kind === 'batch') {
    // What a worker posts back after a burst of context.send(): many small same-shaped messages.
    return Array.from({ length: 200 }, (_, i) => ({ msg: { seq: i, temp: 21.5 + i / 100, unit: 'C', ok: true }, channel: 'sensors' }));
  }
  if (kind === 'small') return { width: 640, height: 480, format: 'jpeg', quality: 0.82, id: 'img-000123' };
  if (kind === 'medium') {
    return { id: 'cfg-7', entries: Array.from({ length: 100 }, (_, i) => ({ key: `sensor.${i}.rate`, value: i * 1.5, on: i % 2 === 0 })) };
  }
  return {
    id: 'report-1',
    rows: Array.from({ length: 10000 }, (_, i) => ({ t: 1732540000000 + i * 1000, temp: 20 + (i % 70) / 10, hum: 40 + (i % 30), label: `room-${i % 12}`, ok: i % 7 !== 0 })),
  };
}

// ---- worker side ---------------------------------------------------------------------------------

function decodeParams(task) {
  switch (task.enc) {
    case 'clone':
      return task.params;
    case 'msgpackr':
      return unpack(new Uint8Array(task.buf));
    case 'records':
      return recordsPackr.unpack(new Uint8Array(task.buf));
    case 'raw': {
      const frame = JSON.parse(Buffer.from(task.buf).toString('utf8'));
      return frame.data[task.cmdType];
    }
    default:
      throw new Error(`unknown encoding ${task.enc}`);
  }
}

function encodeResult(enc, value) {
  switch (enc) {
    case 'none':
      return null;
    case 'clone':
      return value;
    case 'msgpackr': {
      const b = pack(value);
      return move(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
    }
    case 'records': {
      const b = recordsPackr.pack(value);
      return move(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
    }
    case 'json':
      return JSON.stringify(value);
    case 'payload-json':
      // Each telemetry payload serialised in the worker (which is also where send()'s checks run);
      // the main thread only wraps the text in a frame.
      return Array.isArray(value) ? value.map((m) => [JSON.stringify(m.msg), m.channel]) : [[JSON.stringify(value), undefined]];
    default:
      throw new Error(`unknown encoding ${enc}`);
  }
}

// Telemetry batches posted while a task runs: over the worker's parent port (piscina's 'message'
// event on the pool) or over a BroadcastChannel, which also delivers each batch to every other
// worker that has the channel open.
let broadcast = null;
function postBatches(t) {
  const { parentPort, BroadcastChannel } = require('node:worker_threads');
  if (t.via === 'broadcast' && !broadcast) {
    broadcast = new BroadcastChannel('worker-boundary-bench');
    broadcast.onmessage = () => {}; // a worker listens for aborts on the same kind of channel
  }
  const batch = makeParams('batch').map((m) => [JSON.stringify(m.msg), m.channel]);
  for (let i = 0; i < t.n; i++) {
    if (t.via === 'broadcast') broadcast.postMessage(batch);
    else parentPort.postMessage(batch);
  }
  return t.n;
}

let resultCache = null;
function task(t) {
  if (t.via) return postBatches(t);
  const params = decodeParams(t);
  if (t.resultEnc === 'none') return params === undefined ? 1 : 0;
  if (!resultCache || resultCache.kind !== t.resultKind) resultCache = { kind: t.resultKind, value: makeParams(t.resultKind) };
  return encodeResult(t.resultEnc, resultCache.value);
}

// ---- main side ----------------------------------------------------------------------------------

function encodeTask(enc, kind, params, frameBytes) {
  switch (enc) {
    case 'clone':
      return { task: { enc, params } };
    case 'msgpackr': {
      const b = pack(params);
      const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
      return { task: { enc, buf }, transferList: [buf] };
    }
    case 'records': {
      const b = recordsPackr.pack(params);
      const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
      return { task: { enc, buf }, transferList: [buf] };
    }
    case 'raw': {
      const buf = new ArrayBuffer(frameBytes.length);
      new Uint8Array(buf).set(frameBytes);
      return { task: { enc, cmdType: kind, buf }, transferList: [buf] };
    }
    default:
      throw new Error(enc);
  }
}

function decodeResult(enc, r) {
  switch (enc) {
    case 'clone':
      return r;
    case 'msgpackr':
      return unpack(new Uint8Array(r));
    case 'records':
      return recordsPackr.unpack(new Uint8Array(r));
    case 'json':
      return JSON.parse(r);
    case 'payload-json': {
      // Stand-in for the frame encoder: no parse, no stringify, only concatenation.
      let bytes = 0;
      for (const [json, channel] of r) {
        const frame = channel === undefined ? `{"data":{"sdkclient":{"name":"bench"},"payload":${json}}}\n` : `{"data":{"sdkclient":{"name":"bench"},"payload":${json},"channel":${JSON.stringify(channel)}}}\n`;
        bytes += frame.length;
      }
      return bytes;
    }
    default:
      return r;
  }
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function measure(pool, { direction, enc, kind, n }) {
  const params = direction === 'params' ? makeParams(kind) : makeParams('small');
  const shownBytes = Buffer.byteLength(JSON.stringify(makeParams(kind)));
  // The frame as the SDK receives it: the transport hands over the line's bytes.
  const frameBytes = Buffer.from(JSON.stringify({ data: { [kind]: params } }));
  const resultEnc = direction === 'results' ? enc : 'none';
  const paramsEnc = direction === 'params' ? enc : 'clone';
  const submit = () => {
    const { task: t, transferList } = encodeTask(paramsEnc, kind, params, frameBytes);
    t.resultEnc = resultEnc;
    t.resultKind = kind;
    return pool.run(t, { transferList }).then((r) => decodeResult(resultEnc, r));
  };
  // Warm up both threads' code paths.
  for (let i = 0; i < Math.min(50, n); i++) await submit();

  // Main-thread cost: keep the pool saturated (2 in flight per thread) and divide busy time by tasks.
  const inFlight = pool.options.maxThreads * 2;
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  let started = 0;
  await new Promise((resolve, reject) => {
    let done = 0;
    const next = () => {
      if (started >= n) return;
      started++;
      submit().then(() => {
        done++;
        if (done === n) resolve();
        else next();
      }, reject);
    };
    for (let i = 0; i < inFlight; i++) next();
  });
  const wall = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  const mainUsPerTask = (elu.active * 1000) / n;

  // Round trip, one at a time.
  const lat = [];
  const m = Math.min(n, 300);
  for (let i = 0; i < m; i++) {
    const s = performance.now();
    await submit();
    lat.push((performance.now() - s) * 1000);
  }
  lat.sort((a, b) => a - b);
  return {
    direction,
    kind,
    enc,
    bytes: direction === 'params' ? frameBytes.length : shownBytes,
    mainUs: mainUsPerTask,
    throughput: n / (wall / 1000),
    rttP50: pct(lat, 50),
    rttP99: pct(lat, 99),
  };
}

/** Both workers post `n` batches of 200 telemetry messages; main-thread and whole-process CPU per batch. */
async function measureChannel(pool, via, n) {
  const { BroadcastChannel } = require('node:worker_threads');
  let received = 0;
  let done;
  const all = new Promise((r) => (done = r));
  // piscina unrefs its workers: messages still in flight would not keep the process alive.
  const keepAlive = setInterval(() => {}, 1000);
  const expected = 2 * n;
  const onBatch = () => {
    if (++received === expected) done();
  };
  let inbox = null;
  if (via === 'broadcast') {
    inbox = new BroadcastChannel('worker-boundary-bench');
    inbox.onmessage = onBatch;
  } else {
    pool.on('message', onBatch);
  }
  // Warm up, so that both workers have their channel open before the measured run.
  await Promise.all([pool.run({ via, n: 10 }), pool.run({ via, n: 10 })]);
  await new Promise((r) => setTimeout(r, 100));
  received = 0;
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all([pool.run({ via, n }), pool.run({ via, n })]);
  await all;
  const wall = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  clearInterval(keepAlive);
  if (inbox) inbox.close();
  else pool.off('message', onBatch);
  const row = {
    direction: 'batches',
    via,
    mainUsPerBatch: (elu.active * 1000) / expected,
    cpuUsPerBatch: (cpu.user + cpu.system) / expected,
    batchesPerSec: expected / (wall / 1000),
  };
  console.log(
    `batches via ${via.padEnd(9)}  main ${row.mainUsPerBatch.toFixed(1).padStart(7)} µs/batch  ` +
      `all threads ${row.cpuUsPerBatch.toFixed(1).padStart(7)} µs/batch  ${row.batchesPerSec.toFixed(0)} batches/s (200 messages each)`,
  );
  return row;
}

async function main() {
  const quick = process.argv.includes('--quick');
  console.log('transport: none (thread boundary only, piscina ' + Piscina.version + ', 2 worker threads)');
  console.log(`node ${process.version}, ${require('node:os').cpus().length} cpus\n`);
  const pool = new Piscina({ filename: __filename, minThreads: 2, maxThreads: 2, idleTimeout: 60_000 });
  const plan = [];
  const counts = quick ? { small: 2000, medium: 500, batch: 500, large: 20 } : { small: 20000, medium: 4000, batch: 4000, large: 100 };
  for (const kind of ['small', 'medium', 'large']) {
    for (const enc of ['clone', 'msgpackr', 'records', 'raw']) plan.push({ direction: 'params', enc, kind, n: counts[kind] });
  }
  for (const kind of ['small', 'batch', 'large']) {
    for (const enc of ['clone', 'msgpackr', 'records', 'json', 'payload-json']) plan.push({ direction: 'results', enc, kind, n: counts[kind] });
  }
  // Correctness first: every encoding must give back exactly what went in.
  for (const kind of ['small', 'medium', 'large']) {
    const p = makeParams(kind);
    const frame = Buffer.from(JSON.stringify({ data: { [kind]: p } }));
    for (const enc of ['clone', 'msgpackr', 'records', 'raw']) {
      if (!msgpackr && (enc === 'msgpackr' || enc === 'records')) continue;
      const { task: t } = encodeTask(enc, kind, p, frame);
      const back = enc === 'clone' ? t.params : decodeParams(t);
      if (JSON.stringify(back) !== JSON.stringify(p)) throw new Error(`${enc} does not round-trip ${kind}`);
    }
  }
  const rows = [];
  // --batches: only the parent-port vs BroadcastChannel comparison.
  if (process.argv.includes('--batches')) plan.length = 0;
  for (const item of plan) {
    if (!msgpackr && (item.enc === 'msgpackr' || item.enc === 'records')) continue;
    const r = await measure(pool, item);
    rows.push(r);
    console.log(
      `${r.direction.padEnd(7)} ${r.kind.padEnd(6)} ${String(r.bytes).padStart(8)} B  ${r.enc.padEnd(8)} ` +
        `main ${r.mainUs.toFixed(1).padStart(8)} µs/task  ${r.throughput.toFixed(0).padStart(7)} tasks/s  ` +
        `rtt p50 ${r.rttP50.toFixed(0).padStart(6)} µs  p99 ${r.rttP99.toFixed(0).padStart(6)} µs`,
    );
  }
  for (const via of ['port', 'broadcast']) rows.push(await measureChannel(pool, via, quick ? 500 : 3000));
  await pool.destroy();
  if (process.argv.includes('--json')) console.log(JSON.stringify(rows));
}

if (isMainThread) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
} else {
  module.exports = task;
}
