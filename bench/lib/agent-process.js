'use strict';
// The agent stand-in, run as its own process (see agent.js) so that it never shares a core or an
// event loop with the sender it measures. It does the least an agent must: count newlines and note
// when they arrive. Optional extras, each switched on only by the case that needs it: keep the bytes
// (to check order), trace arrivals per read, throttle reading to a byte rate, and write commands.

const net = require('node:net');
const fs = require('node:fs');

const now = () => Number(process.hrtime.bigint()); // CLOCK_MONOTONIC ns, comparable across processes

const SDKINIT = '{"signal":{"sdkinit":{"version":"1.8.0"}}}\n';

let server = null;
let epoch = 0;
let conns = new Set();
let current = null; // newest connection of the current epoch
let st = freshState();
let throttleBps = 0;
let keep = false;
let trace = false;
let expectation = null;

function freshState() {
  return { lines: 0, bytes: 0, tFirst: 0, tLast: 0, tConnect: 0, chunks: [], trace: [], reads: 0 };
}

function reply(id, body) {
  process.send({ id, ...body });
}

function onConnection(socket) {
  const conn = { socket, epoch, helloSeen: false, paused: false, budgetStart: 0, budgetBytes: 0 };
  conns.add(conn);
  if (conn.epoch === epoch) {
    current = conn;
    if (!st.tConnect) st.tConnect = now();
  }
  socket.on('data', (chunk) => onData(conn, chunk));
  socket.on('error', () => {});
  socket.on('close', () => conns.delete(conn));
}

function onData(conn, chunk) {
  const t = now();
  let n = 0;
  let i = chunk.indexOf(10);
  while (i !== -1) {
    n++;
    i = chunk.indexOf(10, i + 1);
  }
  if (!conn.helloSeen && n > 0) {
    // The first line on every connection is the hello; it is not telemetry.
    conn.helloSeen = true;
    n--;
    conn.socket.write(SDKINIT);
    if (keep && conn.epoch === epoch) chunk = chunk.subarray(chunk.indexOf(10) + 1);
  }
  if (conn.epoch === epoch) {
    if (!st.tFirst && n > 0) st.tFirst = t;
    st.lines += n;
    st.bytes += chunk.length;
    st.reads++;
    if (n > 0) st.tLast = t;
    if (keep) st.chunks.push(chunk);
    if (trace) st.trace.push(t, n);
    if (expectation && st.lines >= expectation.n) {
      const e = expectation;
      expectation = null;
      reply(e.id, { ok: true, lines: st.lines, bytes: st.bytes, tFirst: st.tFirst, tLast: t, tConnect: st.tConnect });
    }
  }
  if (throttleBps > 0) throttle(conn, chunk.length, t);
}

/** Token bucket on reads: once ahead of the allowed byte rate, stop reading until it catches up. */
function throttle(conn, bytes, t) {
  if (!conn.budgetStart) conn.budgetStart = t;
  conn.budgetBytes += bytes;
  const allowedAt = conn.budgetStart + (conn.budgetBytes / throttleBps) * 1e9;
  const waitMs = (allowedAt - t) / 1e6;
  if (waitMs >= 1) {
    conn.socket.pause();
    setTimeout(() => conn.socket.resume(), waitMs);
  }
}

function parseKept() {
  const text = Buffer.concat(st.chunks).toString('utf8');
  const seqs = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const f = JSON.parse(line);
      if (f.data && f.data.payload && typeof f.data.payload.seq === 'number') seqs.push(f.data.payload.seq);
      else bad++;
    } catch {
      bad++;
    }
  }
  return { seqs, bad };
}

function writeCommands(id, { n, intervalMs, type }) {
  const conn = current;
  if (!conn) return reply(id, { ok: false, error: 'no connection' });
  const head = `{"data":{"${type}":{"i":`;
  if (!intervalMs) {
    // One write of n commands: the dispatch rate, not the latency, is measured here.
    const t = now();
    let s = '';
    for (let i = 0; i < n; i++) s += `${head}${i},"t":${t}}}}\n`;
    const t0 = now();
    conn.socket.write(s);
    return reply(id, { ok: true, tStart: t0 });
  }
  let i = 0;
  const timer = setInterval(() => {
    if (i >= n || conn.socket.destroyed) {
      clearInterval(timer);
      return reply(id, { ok: true, written: i });
    }
    conn.socket.write(`${head}${i++},"t":${now()}}}}\n`);
  }, intervalMs);
}

process.on('message', (msg) => {
  const { id, op } = msg;
  switch (op) {
    case 'listen':
      try {
        fs.rmSync(msg.path, { force: true });
      } catch {}
      server = net.createServer(onConnection);
      server.listen(msg.path, () => reply(id, { ok: true, t: now() }));
      return;
    case 'reset':
      epoch++;
      current = null;
      // `adopt`: the connections open now count in the new trial too (a sender that stays linked
      // across trials, as the burst case's SDK does).
      if (msg.adopt) {
        for (const c of conns) {
          c.epoch = epoch;
          current = c;
        }
      }
      st = freshState();
      expectation = null;
      keep = !!msg.keep;
      trace = !!msg.trace;
      throttleBps = msg.throttleBps || 0;
      return reply(id, { ok: true });
    case 'expect':
      if (st.lines >= msg.n) {
        return reply(id, { ok: true, lines: st.lines, bytes: st.bytes, tFirst: st.tFirst, tLast: st.tLast, tConnect: st.tConnect });
      }
      expectation = { id, n: msg.n };
      return;
    case 'stats': {
      const cpu = process.cpuUsage();
      return reply(id, {
        ok: true,
        lines: st.lines,
        bytes: st.bytes,
        reads: st.reads,
        tFirst: st.tFirst,
        tLast: st.tLast,
        tConnect: st.tConnect,
        cpuUs: cpu.user + cpu.system,
        trace: msg.withTrace ? st.trace : undefined,
        kept: msg.withKept ? parseKept() : undefined,
      });
    }
    case 'commands':
      return writeCommands(id, msg);
    case 'throttle':
      throttleBps = msg.bytesPerSec || 0;
      for (const c of conns) {
        c.budgetStart = 0;
        c.budgetBytes = 0;
        if (!throttleBps) c.socket.resume();
      }
      return reply(id, { ok: true });
    case 'close':
      for (const c of conns) c.socket.destroy();
      if (server) server.close();
      server = null;
      return reply(id, { ok: true });
    case 'exit':
      process.exit(0);
  }
});

process.on('disconnect', () => process.exit(0));
process.send({ id: 0, ready: true });
