// iottly-sdk-bench: "is it fast enough on my board?", measured on an installed copy of the package
// with nothing but Node. The parent hosts the simulator (or points at a real agent) and forks the
// command itself once per sender per round (--internal-sender), so that every sender has a process,
// a heap and CPU accounting of its own; the senders run one at a time, interleaved across rounds.

import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentSimulator } from '../sim/index';
import { SDK_VERSION } from '../version';
import { DEFAULT_BURST_MAX, SDK_DEFAULTS, SENDER_FLAG, USAGE, UsageError, parseArgs, type BenchArgs } from './args';
import { boardFacts, nativeFacts } from './facts';
import { loadPayload, type Payload } from './payload';
import type { ChildMessage, ParentMessage, SenderKind, SenderResult, SenderSpec } from './protocol';
import { LABEL, aggregate, count, renderText, type BenchReport } from './report';
import { runSender } from './sender';

export { runSender, SENDER_FLAG };

/** A default burst's frames stay under this, below the SDK's default queue bound (4 MiB): nothing drops by design. */
const BURST_BUDGET_BYTES = 3 * 1024 * 1024;
const WARMUP_MAX = 2000;
const BIN = path.join(__dirname, '..', '..', 'bin', 'iottly-sdk-bench.js');

export interface BenchIo {
  out?: (text: string) => void;
  /** One progress or error line, without the newline. */
  err?: (line: string) => void;
}

const now = (): number => Number(process.hrtime.bigint());

/** Slower deadlines for emulated runs (the tests under qemu set IOTTLY_TEST_SLOWDOWN). */
function slowdown(): number {
  const s = Number(process.env.IOTTLY_TEST_SLOWDOWN);
  return Number.isFinite(s) && s >= 1 ? s : 1;
}

/**
 * Counts what the simulator reads, for the sender running now: a mark, then a wait for a number of
 * messages, answered with when the last of them was read. A listener on each connection's 'data'
 * (after the simulator's own) sees the count move without making the simulator parse telemetry.
 */
class DeliveryCounter {
  private base = 0;
  private last = 0;
  private lastAt = now();
  private progressAt = Date.now();
  private waiter: { count: number; resolve: (m: { delivered: number; at: number }) => void; timer: NodeJS.Timeout } | null = null;

  constructor(private readonly sim: AgentSimulator, private readonly stallMs: number) {
    sim.on('connection', (c) => c.socket.on('data', () => this.onData()));
  }

  mark(): void {
    this.base = this.sim.counts.telemetry;
    this.last = this.base;
    this.lastAt = now();
    this.progressAt = Date.now();
  }

  private onData(): void {
    const n = this.sim.counts.telemetry;
    if (n === this.last) return;
    this.last = n;
    this.lastAt = now();
    this.progressAt = Date.now();
    if (this.waiter && n - this.base >= this.waiter.count) this.settle();
  }

  private settle(): void {
    const w = this.waiter!;
    this.waiter = null;
    clearInterval(w.timer);
    w.resolve({ delivered: this.last - this.base, at: this.lastAt });
  }

  wait(expect: number): Promise<{ delivered: number; at: number }> {
    return new Promise((resolve) => {
      const timer = setInterval(() => {
        if (Date.now() - this.progressAt > this.stallMs) this.settle();
      }, 100);
      this.waiter = { count: expect, resolve, timer };
      if (this.last - this.base >= expect) this.settle();
    });
  }
}

interface Plan {
  senders: SenderKind[];
  rates: number[];
  seconds: number;
  burst: number | null;
  warmup: number;
}

function plan(args: BenchArgs, payload: Payload, nativeLoads: boolean): Plan {
  const largest = Math.max(...payload.frameBytes);
  let burst: number | null = null;
  if (args.burst === 'default') burst = Math.min(DEFAULT_BURST_MAX, Math.max(1, Math.floor(BURST_BUDGET_BYTES / largest)));
  else if (typeof args.burst === 'number') burst = args.burst;
  const warmup = Math.max(1, Math.min(WARMUP_MAX, burst ?? WARMUP_MAX, Math.floor(BURST_BUDGET_BYTES / largest)));
  const senders: SenderKind[] = ['sdk-js'];
  if (nativeLoads) senders.push('sdk-native');
  senders.push('naive', 'stringify');
  return { senders, rates: args.rates, seconds: args.seconds, burst, warmup };
}

/** One sender child, from fork to result. Rejects with a message when it fails. */
function runChild(
  spec: SenderSpec,
  counter: DeliveryCounter | null,
  say: (line: string) => void,
  children: Set<ChildProcess>,
): Promise<SenderResult> {
  const budgetMs = ((spec.rates.length * spec.seconds + 60) * 1000 + (spec.burst ?? 0) / 2) * spec.slowdown;
  return new Promise((resolve, reject) => {
    const child = fork(BIN, [SENDER_FLAG], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    children.add(child);
    // A sender never writes to stdout (it would spoil --json); whatever does goes to stderr.
    child.stdout!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    let result: SenderResult | null = null;
    let failure: string | null = null;
    const send = (m: ParentMessage): void => {
      if (child.connected) child.send(m);
    };
    const timer = setTimeout(() => {
      failure = `no result within ${Math.round(budgetMs / 1000)} s; stopped it`;
      child.kill('SIGKILL');
    }, budgetMs);
    child.on('message', (m: ChildMessage) => {
      switch (m.type) {
        case 'progress':
          say(m.line);
          break;
        case 'mark':
          counter?.mark();
          send({ type: 'marked' });
          break;
        case 'await':
          if (counter) counter.wait(m.count).then((d) => send({ type: 'delivered', ...d }));
          else send({ type: 'delivered', delivered: 0, at: now() });
          break;
        case 'result':
          result = m.result;
          break;
        case 'failed':
          failure = m.message;
          break;
      }
    });
    child.on('error', (err) => {
      failure ??= `could not start: ${err.message}`;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (result) resolve(result);
      else reject(new Error(failure ?? `exited (${signal ?? `code ${code}`}) before reporting`));
    });
    send({ type: 'spec', spec });
  });
}

/** A temporary directory for the simulator's socket, short enough for sun_path. */
function tempDir(): string {
  const base = Buffer.byteLength(os.tmpdir()) < 60 ? os.tmpdir() : '/tmp';
  return fs.mkdtempSync(path.join(base, 'iottly-bench-'));
}

export async function main(argv: readonly string[], io: BenchIo = {}): Promise<number> {
  const out = io.out ?? ((text: string) => process.stdout.write(text));
  const err = io.err ?? ((line: string) => process.stderr.write(`${line}\n`));
  const say = (line: string): void => err(`iottly-sdk-bench: ${line}`);

  let args: BenchArgs;
  let payload: Payload;
  try {
    args = parseArgs(argv);
    if (args.help) {
      out(`${USAGE}\n`);
      return 0;
    }
    if (args.version) {
      out(`${SDK_VERSION}\n`);
      return 0;
    }
    payload = loadPayload(args.payloadFile, args.channel);
    if (args.socketPath !== null) {
      let st: fs.Stats;
      try {
        st = fs.statSync(args.socketPath);
      } catch {
        throw new UsageError(`--socket ${args.socketPath}: no such file; is the agent running, and is this its socket?`);
      }
      if (!st.isSocket()) throw new UsageError(`--socket ${args.socketPath}: not a socket`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      err(`iottly-sdk-bench: ${e.message}`);
      return 2;
    }
    throw e;
  }

  const started = Date.now();
  const startedAt = new Date().toISOString();
  const board = boardFacts();
  const native = nativeFacts();
  const p = plan(args, payload, native.loads);
  const slow = slowdown();
  const warnings: string[] = [];
  const failures: BenchReport['failures'] = [];
  const largest = Math.max(...payload.frameBytes);
  const queueBound = args.maxQueueBytes ?? SDK_DEFAULTS.maxQueueBytes;
  if (p.burst !== null && p.burst * largest > queueBound) {
    warnings.push(
      `the burst is ${count(p.burst)} frames of up to ${count(largest)} B, more than the SDK's queue bound ` +
        `(maxQueueBytes ${count(queueBound)} B): the SDK senders may drop the oldest, by design; --max-queue-bytes raises it`,
    );
  }

  const children = new Set<ChildProcess>();
  let sim: AgentSimulator | null = null;
  let dir: string | null = null;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = true;
    say(`${signal}: stopping`);
    for (const c of children) c.kill('SIGKILL');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    let socketPath: string;
    let counter: DeliveryCounter | null = null;
    if (args.socketPath === null) {
      dir = tempDir();
      socketPath = path.join(dir, 'agent.sock');
      sim = new AgentSimulator({ socketPath, keepFrames: false, log: false });
      await sim.listen();
      counter = new DeliveryCounter(sim, 5000 * slow);
      say(`simulator listening on ${socketPath}`);
    } else {
      socketPath = path.resolve(args.socketPath);
      const perSender = p.warmup + p.rates.reduce((a, r) => a + Math.round(r * p.seconds), 0) + (p.burst ?? 0);
      const total = perSender * (p.senders.length - 1) * args.rounds;
      say('!!!');
      say(`!!! MEASURING AGAINST THE REAL AGENT at ${socketPath}`);
      say(`!!! about ${count(total)} messages go to channel "${args.channel}" and on to the iottly cloud`);
      say('!!! delivered counts are not observable here: figures are what was written to the socket');
      say('!!!');
      if (process.stdin.isTTY) {
        say('starting in 5 s; Ctrl-C cancels');
        await new Promise((r) => setTimeout(r, 5000));
        if (interrupted) return 130;
      }
    }

    const measured = p.senders.filter((s) => s !== 'stringify').length;
    const estimate = Math.round(
      (measured * (p.rates.length * p.seconds + 1 + (p.burst ?? 0) / 40_000) + 1) * args.rounds,
    );
    say(
      `${args.rounds} round${args.rounds === 1 ? '' : 's'} of ${p.senders.map((s) => LABEL[s]).join(', ')}` +
        `${p.rates.length ? `; ${p.rates.map(count).join(' and ')} msg/s for ${p.seconds} s each` : ''}` +
        `${p.burst !== null ? `; a burst of ${count(p.burst)}` : ''}; about ${estimate} s`,
    );

    const results = new Map<SenderKind, SenderResult[]>();
    const steps = p.senders.length * args.rounds;
    let step = 0;
    for (let round = 0; round < args.rounds && !interrupted; round++) {
      // Interleaved: each round starts with another sender, so drift in the machine's load falls on all.
      const order = p.senders.map((_, i) => p.senders[(i + round) % p.senders.length]!);
      for (const kind of order) {
        if (interrupted) break;
        step++;
        const tag = `[${step}/${steps}] ${LABEL[kind]}`;
        const spec: SenderSpec = {
          kind,
          socketPath,
          channel: args.channel,
          samples: payload.samples,
          rates: p.rates,
          seconds: p.seconds,
          burst: p.burst,
          warmup: p.warmup,
          maxQueueBytes: args.maxQueueBytes,
          counted: counter !== null,
          slowdown: slow,
        };
        say(`${tag}: ${kind === 'stringify' ? 'building frames, no I/O' : 'linking, warming up'}`);
        try {
          const r = await runChild(spec, counter, (line) => say(`${tag}: ${line}`), children);
          if (kind === 'sdk-native' && r.transport !== 'native') throw new Error(`ran on ${r.transport}, not native`);
          const list = results.get(kind) ?? [];
          list.push(r);
          results.set(kind, list);
        } catch (e) {
          const message = (e as Error).message;
          if (!interrupted) say(`${tag}: FAILED: ${message}`);
          failures.push({ sender: kind, round: round + 1, message });
        }
      }
    }
    if (interrupted) return 130;

    const agg = aggregate(p.senders, results, p.rates);
    if (counter !== null) {
      for (const row of agg.paced) {
        if (row.sender !== 'naive' && row.rounds.some((x) => x.delivered + x.dropped !== x.sent)) {
          warnings.push(`${row.label} at ${count(row.rate)} msg/s: the simulator got fewer messages than were sent and not dropped`);
        }
      }
      for (const row of agg.burst) {
        if (row.rounds.some((x) => x.delivered + x.dropped !== x.count)) {
          warnings.push(`${row.label} burst: the simulator got fewer messages than were sent and not dropped`);
        }
      }
    }
    const fb = payload.frameBytes;
    const report: BenchReport = {
      tool: 'iottly-sdk-bench',
      version: SDK_VERSION,
      startedAt,
      durationMs: Date.now() - started,
      board,
      transports: { available: native.loads ? ['js', 'native'] : ['js'], native },
      agent: { kind: sim ? 'simulator' : 'socket', socketPath, channel: args.channel, counted: counter !== null },
      payload: {
        file: payload.file,
        messages: payload.samples.length,
        frameBytes: { min: Math.min(...fb), max: Math.max(...fb), mean: fb.reduce((a, b) => a + b, 0) / fb.length },
      },
      run: {
        rates: p.rates,
        seconds: p.seconds,
        burst: p.burst,
        rounds: args.rounds,
        warmup: p.warmup,
        maxQueueBytes: args.maxQueueBytes,
        senders: p.senders,
      },
      ...agg,
      failures,
      warnings,
    };
    say(`done in ${Math.round(report.durationMs / 100) / 10} s`);
    out(args.json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));
    return failures.length ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const c of children) c.kill('SIGKILL');
    if (sim) await sim.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}
