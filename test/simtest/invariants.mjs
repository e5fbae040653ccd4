// Invariants of the simulation, checked after every step (checkStep) and at the end of each
// sequence (checkEnd). Each failure throws an InvariantError naming the invariant.
import { fdCount, fdTargets, ioHandles, processState, socketBufferBytes, threadCount } from './world.mjs';

export class InvariantError extends Error {
  constructor(invariant, detail) {
    super(`[${invariant}] ${detail}`);
    this.name = 'InvariantError';
    this.invariant = invariant;
  }
}

/** Invariants reported but not failed (--ignore), with how often each was broken. */
export const ignored = { names: new Set(), counts: {} };

const fail = (invariant, detail) => {
  if (ignored.names.has(invariant)) {
    ignored.counts[invariant] = (ignored.counts[invariant] ?? 0) + 1;
    return;
  }
  throw new InvariantError(invariant, detail);
};

/** Poll `pred` every few ms until it holds; false after `ms`. */
export async function waitFor(pred, ms) {
  const t0 = Date.now();
  for (;;) {
    if (pred()) return true;
    if (Date.now() - t0 > ms) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Two equal stats() in a row (the native counters are updated by another thread). */
export function stableStats(sdk) {
  let a = sdk.stats();
  for (let i = 0; i < 20; i++) {
    const b = sdk.stats();
    if (JSON.stringify(a) === JSON.stringify(b)) return b;
    a = b;
  }
  return a;
}

/** What the agent may hold unread when it closes uncleanly: its socket buffer, plus one read of a child. */
export const UNCLEAN_BOUND_BYTES = socketBufferBytes() + 64 * 1024;

export function checkAccounting(world) {
  const s = stableStats(world.sdk);
  if (s.accepted !== s.written + s.dropped.total + s.buffered) {
    fail('accounting', `accepted ${s.accepted} != written ${s.written} + dropped ${s.dropped.total} + buffered ${s.buffered}`);
  }
  if (s.accepted < world.seqNext) fail('accounting', `accepted ${s.accepted} < messages sent ${world.seqNext}`);
  if ('callsBuffered' in s && 'callsAccepted' in s) {
    if (s.callsAccepted !== s.callsWritten + s.callsDropped + s.callsBuffered) {
      fail('calls-accounting', `callsAccepted ${s.callsAccepted} != callsWritten ${s.callsWritten} + callsDropped ${s.callsDropped} + callsBuffered ${s.callsBuffered}`);
    }
  }
  return s;
}

/** What the agent logged so far: hello first, goodbye last, telemetry in order, no duplicate. */
export function checkAgentLog(world) {
  let lastSeq = -1;
  const seenW = new Set();
  const seenCalls = new Set();
  for (const c of world.log.order) {
    const f = c.frames;
    if (f.length === 0) continue;
    if (f[0].k !== 'hello') fail('hello-first', `connection ${c.key} opened with ${JSON.stringify(f[0])}, not the hello`);
    if (f[0].name !== world.sdk.name) fail('hello-first', `hello names ${JSON.stringify(f[0].name)}`);
    for (let i = 1; i < f.length; i++) {
      const x = f[i];
      if (x.k === 'hello') fail('hello-once', `connection ${c.key}: a second hello at frame ${i}`);
      if (x.k === 'bad') fail('valid-frames', `connection ${c.key}: frame ${i} is not valid JSON of the protocol`);
      if (x.k === 'bye' && i !== f.length - 1) {
        fail('goodbye-last', `connection ${c.key}: ${JSON.stringify(f.slice(i + 1, i + 4))} after the goodbye`);
      }
      if (x.k === 't') {
        if (x.seq <= lastSeq) fail('telemetry-order', `connection ${c.key}: seq ${x.seq} after ${lastSeq} (duplicate or reordered)`);
        if (x.seq >= world.seqNext) fail('telemetry-order', `seq ${x.seq} was never sent`);
        lastSeq = x.seq;
      }
      if (x.k === 'w') {
        if (seenW.has(x.w)) fail('no-duplicate', `worker reply ${x.w} delivered twice`);
        seenW.add(x.w);
      }
      if (x.k === 'call') {
        if (seenCalls.has(x.id)) fail('no-duplicate', `call ${x.id} delivered twice`);
        seenCalls.add(x.id);
      }
    }
  }
}

export function checkUncaught(world) {
  if (processState.unexpectedUncaught.length) {
    const err = processState.unexpectedUncaught.shift();
    fail('no-uncaught', `an exception not thrown by the test escaped: ${err?.stack ?? err}`);
  }
  if (world.violations.length) {
    const v = world.violations[0];
    const name = /^'|agent status|'started'|'stopped'/.test(v) ? 'status-sequence' : 'callbacks';
    fail(name, v);
  }
}

export function checkMemory() {
  const m = process.memoryUsage();
  if (m.heapUsed > 512 * 1024 * 1024) fail('memory', `heap ${(m.heapUsed / 2 ** 20).toFixed(1)} MiB`);
  if (m.rss > 1024 * 1024 * 1024) fail('memory', `rss ${(m.rss / 2 ** 20).toFixed(1)} MiB`);
}

/** After every step. */
export function checkStep(world) {
  checkUncaught(world);
  checkAccounting(world);
  checkAgentLog(world);
  checkMemory();
}

/** Right after stop() resolved: no socket of the SDK left, nothing linked, statuses closed. */
export async function checkStopped(world, ms, baselineThreads) {
  const slowdown = Number(process.env.IOTTLY_TEST_SLOWDOWN || 1);
  const bound = world.options.stopTimeoutMs * (world.config.workers ? 2 : 1) + 250 * slowdown;
  if (ms > bound) fail('stop-time', `stop() took ${ms} ms, bound ${bound} ms`);
  if (world.sdk.linked) fail('stop-leaves-nothing', 'linked is still true after stop() resolved');
  if (world.statusOpen) fail('status-sequence', `'started' with no 'stopped' once stop() resolved (statuses ${JSON.stringify(world.statuses.slice(-6))})`);
  const left = ioHandles().filter((h) => !world.baseline.handles.has(h) && !world.isAgentHandle(h));
  if (left.length) fail('stop-leaves-nothing', `handles left after stop() resolved: ${left.map(describeHandle).join(', ')}`);
  // stop() has joined the I/O thread, but the kernel counts a thread until it has reaped it, and
  // pthread_join() returns as soon as the thread clears its id, a little before that: a C loop of
  // create, join, read /proc/self/status saw the count one too high about once in 900 joins. So
  // the count is awaited; a thread that was not joined stays counted and still fails here.
  if (!(await waitFor(() => threadCount() <= baselineThreads, 1000 * slowdown))) {
    fail('stop-leaves-nothing', `${threadCount()} threads after stop(), ${baselineThreads} before the SDK started`);
  }
}

/**
 * End of a sequence: the SDK stopped and the agent drained. Every message sent is delivered once,
 * in order, or counted as dropped, or lost at an unclean agent close within the socket-buffer bound
 * (and only one sent before that close).
 */
export function checkEnd(world) {
  const s = checkAccounting(world);
  checkAgentLog(world);
  if (s.buffered !== 0) fail('accounting', `${s.buffered} still buffered after stop()`);
  const delivered = new Set();
  let wDelivered = 0;
  let callsDelivered = 0;
  for (const c of world.log.order) {
    for (const f of c.frames) {
      if (f.k === 't') delivered.add(f.seq);
      if (f.k === 'w') wDelivered++;
      if (f.k === 'call') callsDelivered++;
    }
  }
  for (const c of world.log.order) {
    if (c.expectBye && !c.unclean && c.frames.at(-1)?.k !== 'bye') {
      fail('goodbye-last', `connection ${c.key}, closed by stop() while the agent read it, ends with ${JSON.stringify(c.frames.at(-1))}, not the goodbye`);
    }
  }
  const workerAccepted = s.accepted - world.seqNext;
  const missing = [];
  for (let seq = 0; seq < world.seqNext; seq++) if (!delivered.has(seq)) missing.push(seq);
  const missingTotal = missing.length + (workerAccepted - wDelivered);
  const lost = missingTotal - s.dropped.total;
  if (lost < 0) fail('delivered-or-dropped', `${s.dropped.total} counted as dropped but only ${missingTotal} missing at the agent: a dropped message was delivered`);
  if (s.written !== delivered.size + wDelivered + lost) {
    fail('delivered-or-dropped', `written ${s.written} != delivered ${delivered.size + wDelivered} + lost ${lost}`);
  }
  const lastUnclean = world.uncleanCloses.length ? world.uncleanCloses.at(-1).seqNext : 0;
  const notLosable = missing.filter((seq) => seq >= lastUnclean).length;
  if (lost > 0 && world.uncleanCloses.length === 0) {
    fail('delivered-or-dropped', `${lost} messages counted as written never reached the agent, and the agent never closed uncleanly (missing ${fmt(missing)}, dropped ${s.dropped.total})`);
  }
  if (notLosable > s.dropped.total) {
    fail('delivered-or-dropped', `${notLosable} messages sent after the last unclean agent close are missing but only ${s.dropped.total} were counted as dropped (missing ${fmt(missing)})`);
  }
  if (lost > 0) {
    const sizes = missing.filter((seq) => seq < lastUnclean).map((seq) => world.frameBytes[seq]).sort((a, b) => a - b);
    let budget = UNCLEAN_BOUND_BYTES * world.uncleanCloses.length;
    let fit = 0;
    for (const b of sizes) {
      if (b > budget) break;
      budget -= b;
      fit++;
    }
    // Worker replies accepted before the last unclean close was complete: small, and as losable.
    fit += Math.min(workerAccepted - wDelivered, world.uncleanCloses.at(-1).workerAccepted);
    if (lost > fit) fail('loss-bound', `${lost} messages lost uncounted at ${world.uncleanCloses.length} unclean closes; at most ${fit} fit in their socket buffers`);
  }
  if ('callsAccepted' in s) {
    if (callsDelivered > s.callsWritten) fail('calls-accounting', `${callsDelivered} calls delivered, ${s.callsWritten} counted as written`);
    if (s.callsWritten > callsDelivered && world.uncleanCloses.length === 0) {
      fail('calls-accounting', `${s.callsWritten - callsDelivered} calls counted as written never reached the agent, which never closed uncleanly`);
    }
  }
  checkUncaught(world);
  checkMemory();
}

/** After the sequence's teardown: fds, threads and handles back where they were. */
export async function checkNoLeak(world) {
  const back = await waitFor(
    () => fdCount() <= world.baseline.fds && threadCount() <= world.baseline.threads && ioHandles().every((h) => world.baseline.handles.has(h)),
    2000,
  );
  if (!back) {
    const extra = ioHandles()
      .filter((h) => !world.baseline.handles.has(h))
      .map((h) => `${h.constructor?.name}${h._handle?.fd !== undefined ? ` fd ${h._handle.fd}` : ''}${h._type ? ` ${h._type}` : ''}`);
    // Which descriptors are new (or now point elsewhere), and to what: a socket, a pipe, an eventfd...
    const before = world.baseline.fdTargets;
    const fds = [...fdTargets()].filter(([fd, target]) => before.get(fd) !== target).map(([fd, target]) => `${fd} -> ${target}`);
    fail('no-leak', `after teardown: fds ${fdCount()} (before ${world.baseline.fds}; new or changed: ${fds.join(', ') || 'none'}), threads ${threadCount()} (before ${world.baseline.threads}), new handles [${extra.join(', ')}]`);
  }
}

function describeHandle(h) {
  const bits = [h.constructor?.name ?? typeof h];
  if (typeof h.destroyed === 'boolean') bits.push(`destroyed=${h.destroyed}`);
  if (typeof h.connecting === 'boolean') bits.push(`connecting=${h.connecting}`);
  if (h._handle?.fd !== undefined) bits.push(`fd=${h._handle.fd}`);
  if (typeof h.readyState === 'string') bits.push(`readyState=${h.readyState}`);
  return bits.join(' ');
}

function fmt(list) {
  if (list.length <= 12) return JSON.stringify(list);
  return `${JSON.stringify(list.slice(0, 12)).slice(0, -1)},... (${list.length})]`;
}
