// The sender child: one process per sender per round, so that senders do not share a heap, a JIT or
// CPU accounting. It gets its spec from the parent, links to the agent, warms up, runs the paced
// windows and the burst, and reports. The parent, which hosts the simulator, counts what arrives.

import * as net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { IottlySDK } from '../index';
import { APP, frameOf } from './payload';
import { count } from './report';
import type {
  BurstResult,
  CeilingResult,
  ChildMessage,
  PacedResult,
  ParentMessage,
  SenderResult,
  SenderSpec,
} from './protocol';

const now = (): number => Number(process.hrtime.bigint());
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const cpuUs = (): number => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
const rssMB = (): number => process.memoryUsage.rss() / 1048576;

/** A naive client's socket may hold this much unwritten before it skips messages (counted dropped). */
const NAIVE_BUFFER_CAP = 64 * 1024 * 1024;
/** monitorEventLoopDelay's timer interval; what is recorded beyond it is lateness. */
const LOOP_RESOLUTION_MS = 10;

/** What the measuring code needs of a sender, whichever it is. */
interface Link {
  transport: string | null;
  /** Sends messages number first .. first + count - 1 (samples in turn). */
  send(first: number, count: number): void;
  /** Messages neither written to the socket nor dropped yet. */
  pending(): number;
  dropped(): number;
  written(): number;
  close(): Promise<void>;
}

// ---- the channel to the parent ---------------------------------------------------------------

const waiting: { type: ParentMessage['type']; resolve: (m: ParentMessage) => void }[] = [];
const early: ParentMessage[] = [];

function onParent(m: ParentMessage): void {
  const i = waiting.findIndex((w) => w.type === m.type);
  if (i === -1) {
    early.push(m);
    return;
  }
  const [w] = waiting.splice(i, 1);
  w!.resolve(m);
}

function next<T extends ParentMessage['type']>(type: T): Promise<Extract<ParentMessage, { type: T }>> {
  const i = early.findIndex((m) => m.type === type);
  if (i !== -1) return Promise.resolve(early.splice(i, 1)[0] as Extract<ParentMessage, { type: T }>);
  return new Promise((resolve) => waiting.push({ type, resolve: resolve as (m: ParentMessage) => void }));
}

function tell(m: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    process.send!(m, undefined, {}, () => resolve());
  });
}

const progress = (line: string): void => void tell({ type: 'progress', line });

// ---- senders ---------------------------------------------------------------------------------

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${Math.round(ms / 1000)} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function sdkLink(spec: SenderSpec, transport: 'js' | 'native'): Promise<Link> {
  const options: Record<string, unknown> = { socketPath: spec.socketPath, transport };
  if (spec.maxQueueBytes !== null) {
    options.maxQueueBytes = spec.maxQueueBytes;
    if (spec.maxQueueBytes < 1024 * 1024) options.highWaterMark = spec.maxQueueBytes;
  }
  const sdk = new IottlySDK(APP, options);
  if (sdk.transport !== transport) throw new Error(`asked for the ${transport} transport, got ${sdk.transport}`);
  const started = new Promise<void>((resolve) => {
    const on = (s: string): void => {
      if (s === 'started') {
        sdk.off('agentStatus', on);
        resolve();
      }
    };
    sdk.on('agentStatus', on);
  });
  let lastError = '';
  sdk.on('connectError', (err) => {
    lastError = `: ${err.message}`;
  });
  sdk.start();
  try {
    await withTimeout(started, 10_000 * spec.slowdown, `the SDK's link to the agent at ${spec.socketPath}${lastError}`);
  } catch (err) {
    await sdk.stop();
    throw err;
  }
  const { samples } = spec;
  const k = samples.length;
  const channel = spec.channel ?? undefined;
  return {
    transport: sdk.transport,
    send(first, count) {
      for (let i = first, end = first + count; i < end; i++) sdk.send(samples[i % k]!, channel);
    },
    pending: () => sdk.stats().buffered,
    dropped: () => sdk.stats().dropped.total,
    written: () => sdk.stats().written,
    close: () => sdk.stop(),
  };
}

/** What an app writes without the SDK: one socket.write of JSON.stringify per message. */
async function naiveLink(spec: SenderSpec): Promise<Link> {
  const socket = await withTimeout(
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection({ path: spec.socketPath }, () => resolve(s));
      s.once('error', reject);
    }),
    10_000 * spec.slowdown,
    `a connection to ${spec.socketPath}`,
  );
  socket.on('data', () => {});
  socket.on('error', () => {});
  socket.write(`${JSON.stringify({ signal: { sdkclient: { name: APP, status: 'connected' } } })}\n`);
  const { samples } = spec;
  const k = samples.length;
  const channel = spec.channel;
  let skipped = 0;
  let sent = 0;
  return {
    transport: 'node:net',
    send(first, count) {
      for (let i = first, end = first + count; i < end; i++) {
        if (socket.writableLength > NAIVE_BUFFER_CAP) {
          skipped++;
          continue;
        }
        const payload = samples[i % k];
        const data = channel === null ? { sdkclient: { name: APP }, payload } : { sdkclient: { name: APP }, payload, channel };
        socket.write(JSON.stringify({ data }) + '\n');
        sent++;
      }
    },
    pending: () => (socket.writableLength > 0 ? 1 : 0),
    dropped: () => skipped,
    // Every write is in the kernel once pending() is 0, which is when this is read.
    written: () => sent,
    close: () => new Promise<void>((resolve) => socket.end(() => resolve())),
  };
}

// ---- measurements ----------------------------------------------------------------------------

/** Resolves with the time the sender's queue was found empty (checked every millisecond). */
async function drained(link: Link, slowdown: number): Promise<number> {
  const deadline = Date.now() + 60_000 * slowdown;
  while (link.pending() > 0) {
    if (Date.now() > deadline) throw new Error('the queue did not drain within 60 s');
    await sleep(1);
  }
  return now();
}

/** Messages the agent read since the last mark, and when the last one came (null: not counted). */
async function delivered(spec: SenderSpec, expect: number): Promise<{ delivered: number; at: number } | null> {
  if (!spec.counted) return null;
  void tell({ type: 'await', count: expect });
  const m = await next('delivered');
  return { delivered: m.delivered, at: m.at };
}

async function mark(): Promise<void> {
  void tell({ type: 'mark' });
  await next('marked');
}

/**
 * Calls link.send from a timer so that `rate` messages a second go out on average for `seconds`,
 * catching up after late ticks. The timer runs every 1000/rate ms (between 1 and 10 ms), as an app
 * sending at that rate would.
 */
async function paced(spec: SenderSpec, link: Link, rate: number, seconds: number, n0: number): Promise<PacedResult> {
  await mark();
  const total = Math.max(1, Math.round(rate * seconds));
  const interval = Math.max(1, Math.min(10, Math.floor(1000 / rate)));
  const dropped0 = link.dropped();
  const written0 = link.written();
  let rssPeak = rssMB();
  const h = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  h.enable();
  const c0 = cpuUs();
  const t0 = now();
  let sent = 0;
  let lastRss = t0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const t = now();
      const due = Math.min(total, Math.floor(((t - t0) / 1e9) * rate) + 1);
      if (due > sent) {
        link.send(n0 + sent, due - sent);
        sent = due;
      }
      if (t - lastRss >= 100e6) {
        lastRss = t;
        rssPeak = Math.max(rssPeak, rssMB());
      }
      if (sent >= total) {
        clearInterval(timer);
        resolve();
      }
    }, interval);
  });
  const wall = (now() - t0) / 1e9;
  const cpu = cpuUs() - c0;
  h.disable();
  rssPeak = Math.max(rssPeak, rssMB());
  await drained(link, spec.slowdown);
  const dropped = link.dropped() - dropped0;
  const got = await delivered(spec, sent - dropped);
  const late = (ms: number): number => Math.max(0, ms / 1e6 - LOOP_RESOLUTION_MS);
  return {
    rate,
    seconds,
    sent,
    delivered: got ? got.delivered : link.written() - written0,
    dropped,
    cpuUsPerMsg: cpu / sent,
    cpuPctOfCore: (cpu / 1e6 / wall) * 100,
    loopDelayP50Ms: late(h.percentile(50)),
    loopDelayP99Ms: late(h.percentile(99)),
    loopDelayMaxMs: late(h.max),
    rssPeakMB: rssPeak,
  };
}

async function burst(spec: SenderSpec, link: Link, count: number, n0: number): Promise<BurstResult> {
  await mark();
  const dropped0 = link.dropped();
  const written0 = link.written();
  const c0 = cpuUs();
  const t0 = now();
  link.send(n0, count);
  const t1 = now();
  const rssAfterLoop = rssMB();
  const tDrained = await drained(link, spec.slowdown);
  const cpu = cpuUs() - c0;
  const dropped = link.dropped() - dropped0;
  const got = await delivered(spec, count - dropped);
  const deliveredMs = got ? (got.at - t0) / 1e6 : null;
  const drainedMs = (tDrained - t0) / 1e6;
  const n = got ? got.delivered : link.written() - written0;
  return {
    count,
    sendLoopMs: (t1 - t0) / 1e6,
    drainedMs,
    deliveredMs,
    deliveredPerSec: n / ((deliveredMs ?? drainedMs) / 1e3),
    delivered: n,
    dropped,
    cpuUsPerMsg: cpu / count,
    rssPeakMB: Math.max(rssAfterLoop, rssMB()),
  };
}

/** The ceiling: building the telemetry frames with JSON.stringify, nothing else, for about 0.3 s. */
function ceiling(spec: SenderSpec): CeilingResult {
  const { samples } = spec;
  const k = samples.length;
  let sink = 0;
  const run = (count: number): void => {
    for (let i = 0; i < count; i++) sink += frameOf(samples[i % k]!, spec.channel).length;
  };
  run(Math.min(2000, spec.burst ?? 2000)); // warm-up
  let messages = 0;
  const step = Math.max(1, Math.min(1000, spec.burst ?? 1000));
  const c0 = cpuUs();
  const t0 = now();
  let t = t0;
  while (t - t0 < 300e6) {
    run(step);
    messages += step;
    t = now();
  }
  if (sink === 0) throw new Error('unreachable');
  const ns = t - t0;
  return { perSec: messages / (ns / 1e9), nsPerMsg: ns / messages, cpuUsPerMsg: (cpuUs() - c0) / messages, messages };
}

const fmt = (x: number): string => (x >= 100 ? count(x) : x.toPrecision(3));

async function run(spec: SenderSpec): Promise<SenderResult> {
  const result: SenderResult = { kind: spec.kind, pid: process.pid, transport: null, paced: [], burst: null, ceiling: null };
  if (spec.kind === 'stringify') {
    result.ceiling = ceiling(spec);
    progress(`${fmt(result.ceiling.perSec)} frames/s (${fmt(result.ceiling.nsPerMsg)} ns each)`);
    return result;
  }
  const link = spec.kind === 'naive' ? await naiveLink(spec) : await sdkLink(spec, spec.kind === 'sdk-js' ? 'js' : 'native');
  result.transport = link.transport;
  let n = 0;
  try {
    // A warm-up the size of a small burst: the JIT has seen the send path before anything is timed.
    // Waiting until the agent has read it keeps its tail out of the first window's count.
    await mark();
    const dropped0 = link.dropped();
    link.send(n, spec.warmup);
    n += spec.warmup;
    await drained(link, spec.slowdown);
    await delivered(spec, spec.warmup - (link.dropped() - dropped0));
    await sleep(20);
    for (const rate of spec.rates) {
      const r = await paced(spec, link, rate, spec.seconds, n);
      n += r.sent;
      result.paced.push(r);
      progress(
        `${fmt(rate)} msg/s for ${spec.seconds} s: CPU ${fmt(r.cpuUsPerMsg)} µs/msg (${fmt(r.cpuPctOfCore)}% of a core), ` +
          `loop delay p99 ${fmt(r.loopDelayP99Ms)} ms, ${spec.counted ? 'delivered' : 'written'} ${count(r.delivered)}/${count(r.sent)}`,
      );
    }
    if (spec.burst !== null) {
      const b = await burst(spec, link, spec.burst, n);
      n += b.count;
      result.burst = b;
      progress(
        `burst of ${fmt(b.count)}: ${spec.counted ? 'delivered' : 'written'} ${count(b.delivered)} at ${fmt(b.deliveredPerSec)} msg/s, ` +
          `queue drained in ${fmt(b.drainedMs)} ms${b.dropped ? `, ${b.dropped} dropped` : ''}`,
      );
    }
  } finally {
    await link.close();
  }
  return result;
}

/** The child's entry: `iottly-sdk-bench --internal-sender`, forked by the parent with an IPC channel. */
export function runSender(): void {
  if (typeof process.send !== 'function') {
    process.stderr.write('iottly-sdk-bench: --internal-sender is for the command\'s own child processes\n');
    process.exitCode = 2;
    return;
  }
  process.on('message', onParent);
  // The parent gone (killed, Ctrl-C): nothing is left to report to.
  process.on('disconnect', () => process.exit(1));
  next('spec')
    .then((m) => run(m.spec))
    .then(
      (result) => tell({ type: 'result', result }),
      (err: Error) => tell({ type: 'failed', message: err && err.message ? err.message : String(err) }),
    )
    .catch(() => {})
    .finally(() => {
      process.removeListener('message', onParent);
      process.removeAllListeners('disconnect');
      process.disconnect();
    });
}
