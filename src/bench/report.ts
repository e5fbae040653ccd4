// Turns the senders' results into the report: one JSON document (--json) or a few short tables a
// person can paste into an issue (at most 100 columns).

import type { BoardFacts, NativeFacts } from './facts';
import type { BurstResult, CeilingResult, PacedResult, SenderKind, SenderResult } from './protocol';

export const WIDTH = 100;

export const LABEL: Record<SenderKind, string> = {
  'sdk-js': 'SDK js',
  'sdk-native': 'SDK native',
  naive: 'naive node:net',
  stringify: 'JSON.stringify only',
};

export interface PacedRow {
  rate: number;
  sender: SenderKind;
  label: string;
  median: PacedResult;
  rounds: PacedResult[];
}

export interface BurstRow {
  sender: SenderKind;
  label: string;
  median: BurstResult;
  /** Median delivered rate over the naive client's, null without a naive figure. */
  vsNaive: number | null;
  rounds: BurstResult[];
}

export interface BenchReport {
  tool: 'iottly-sdk-bench';
  version: string;
  startedAt: string;
  durationMs: number;
  board: BoardFacts;
  transports: { available: string[]; native: NativeFacts };
  agent: { kind: 'simulator' | 'socket'; socketPath: string; channel: string | null; counted: boolean };
  payload: { file: string | null; messages: number; frameBytes: { min: number; max: number; mean: number } };
  run: {
    rates: number[];
    seconds: number;
    burst: number | null;
    rounds: number;
    warmup: number;
    maxQueueBytes: number | null;
    senders: SenderKind[];
  };
  paced: PacedRow[];
  burst: BurstRow[];
  ceiling: { perSec: number; nsPerMsg: number; cpuUsPerMsg: number; vsNaive: number | null; rounds: CeilingResult[] } | null;
  failures: { sender: SenderKind; round: number; message: string }[];
  warnings: string[];
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => x !== null && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Field by field median of results of the same shape (null stays null). */
function medianOf<T extends object>(rows: T[]): T {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(rows[0]!)) {
    const vals = rows.map((r) => (r as Record<string, unknown>)[key]);
    out[key] = vals.some((v) => v === null) ? null : median(vals as number[]);
  }
  return out as T;
}

export function aggregate(
  senders: SenderKind[],
  results: Map<SenderKind, SenderResult[]>,
  rates: number[],
): Pick<BenchReport, 'paced' | 'burst' | 'ceiling'> {
  const paced: PacedRow[] = [];
  for (const rate of rates) {
    for (const sender of senders) {
      const rounds = (results.get(sender) ?? []).flatMap((r) => r.paced.filter((p) => p.rate === rate));
      if (rounds.length) paced.push({ rate, sender, label: LABEL[sender], median: medianOf(rounds), rounds });
    }
  }
  const burst: BurstRow[] = [];
  for (const sender of senders) {
    const rounds = (results.get(sender) ?? []).flatMap((r) => (r.burst ? [r.burst] : []));
    if (rounds.length) burst.push({ sender, label: LABEL[sender], median: medianOf(rounds), vsNaive: null, rounds });
  }
  const naive = burst.find((b) => b.sender === 'naive')?.median.deliveredPerSec ?? null;
  for (const b of burst) b.vsNaive = naive ? b.median.deliveredPerSec / naive : null;
  const ceilingRounds = (results.get('stringify') ?? []).flatMap((r) => (r.ceiling ? [r.ceiling] : []));
  const ceiling = ceilingRounds.length
    ? {
        perSec: median(ceilingRounds.map((c) => c.perSec)),
        nsPerMsg: median(ceilingRounds.map((c) => c.nsPerMsg)),
        cpuUsPerMsg: median(ceilingRounds.map((c) => c.cpuUsPerMsg)),
        vsNaive: null as number | null,
        rounds: ceilingRounds,
      }
    : null;
  if (ceiling && naive) ceiling.vsNaive = ceiling.perSec / naive;
  return { paced, burst, ceiling };
}

// ---- text ------------------------------------------------------------------------------------

/** A figure in 3 significant digits at most, without exponents: 0.042, 1.25, 61.3, 950. */
export function num(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return '–';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 100) return Math.round(x).toString();
  if (a >= 10) return x.toFixed(1);
  if (a >= 0.01) return x.toFixed(2);
  return '<0.01';
}

/** A rate: 950, 12.3k, 1.25M. */
export function rate(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return '–';
  if (x >= 1e6) return `${(x / 1e6).toPrecision(3)}M`;
  if (x >= 1e4) return `${(x / 1e3).toPrecision(3)}k`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(2)}k`;
  return Math.round(x).toString();
}

/** 20000 -> "20 000": counts a person reads. */
export function count(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

function bytes(n: number): string {
  if (n >= 1048576) return `${(n / 1048576).toPrecision(3)} MiB`;
  if (n >= 10240) return `${(n / 1024).toPrecision(3)} KiB`;
  return `${Math.round(n)} B`;
}

/** Columns: the first `left` left-aligned, the others right-aligned; headers may take two lines. */
function table(head: string[][], rows: string[][], left = 1): string[] {
  const cols = head[0]!.length;
  const w: number[] = [];
  for (let c = 0; c < cols; c++) w.push(Math.max(...[...head, ...rows].map((r) => (r[c] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((cell, c) => (c < left ? cell.padEnd(w[c]!) : cell.padStart(w[c]!)))
      .join('  ')
      .trimEnd();
  return [...head.map(line), ...rows.map(line)];
}

/** Wraps a long line at spaces, continuation lines indented by `indent`. */
function wrap(text: string, indent = '  '): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > WIDTH) {
    let cut = rest.lastIndexOf(' ', WIDTH);
    if (cut <= indent.length) cut = WIDTH;
    out.push(rest.slice(0, cut));
    rest = indent + rest.slice(cut).trimStart();
  }
  out.push(rest);
  return out;
}

export function renderText(r: BenchReport): string {
  const L: string[] = [];
  const b = r.board;
  const median = r.run.rounds > 1 ? `, median of ${r.run.rounds} rounds` : '';
  L.push(...wrap(`iottly-sdk ${r.version} bench: ${b.cpuModel}, ${b.cores} core${b.cores === 1 ? '' : 's'}, ${b.arch}`));
  L.push(...wrap(`node ${b.node} on ${b.platform} ${b.osRelease}, ${count(b.totalMemoryMB)} MB RAM, load average ${b.loadAverage.toFixed(2)} at start`));
  const n = r.transports.native;
  const native = n.loads
    ? `native (${n.origin ?? 'loaded'}${n.file ? `: ${n.file}` : ''})`
    : `native does not load: ${n.error}`;
  L.push(...wrap(`transports: js, ${native}`));
  if (r.agent.kind === 'simulator') {
    L.push(
      ...wrap(
        `agent: the bundled simulator on a temporary socket${r.agent.channel ? `, channel "${r.agent.channel}"` : ''}; ` +
          'each sender in its own process, one at a time',
      ),
    );
  } else {
    L.push(...wrap(`agent: THE REAL AGENT at ${r.agent.socketPath}, channel "${r.agent.channel}"`));
    L.push('  its reads are not counted: "written" is what each sender wrote to the socket');
  }
  const fb = r.payload.frameBytes;
  const size = fb.min === fb.max ? bytes(fb.max) : `${bytes(fb.min)} to ${bytes(fb.max)}, mean ${bytes(fb.mean)}`;
  L.push(
    ...wrap(
      r.payload.file === null
        ? `payload: a small sensor reading (the default), telemetry frame ${size}`
        : `payload: ${r.payload.file}, ${r.payload.messages} message${r.payload.messages === 1 ? '' : 's'} sent in turn, telemetry frame ${size}`,
    ),
  );
  const got = r.agent.counted ? 'delivered' : 'written';

  if (r.paced.length) {
    L.push('');
    L.push(...wrap(`Paced sending, ${r.run.seconds} s per rate: what it costs the app (whole process${median})`));
    const rows = r.paced.map((p, i) => [
      i === 0 || r.paced[i - 1]!.rate !== p.rate ? count(p.rate) : '',
      p.label,
      num(p.median.cpuUsPerMsg),
      num(p.median.cpuPctOfCore),
      num(p.median.loopDelayP50Ms),
      num(p.median.loopDelayP99Ms),
      num(p.median.rssPeakMB),
      `${count(p.median.delivered)}/${count(p.median.sent)}`,
      count(p.median.dropped),
    ]);
    L.push(
      ...table(
        [
          ['', '', 'CPU', 'CPU %', 'loop delay', 'loop delay', 'RSS', '', ''],
          ['msg/s', 'sender', 'µs/msg', 'of a core', 'p50 ms', 'p99 ms', 'MB', got, 'dropped'],
        ],
        rows,
        2,
      ),
    );
  }

  if (!r.burst.length && r.ceiling) {
    L.push('');
    L.push(
      ...wrap(
        `Ceiling: JSON.stringify alone builds ${rate(r.ceiling.perSec)} telemetry frames/s of this payload ` +
          `(${num(r.ceiling.cpuUsPerMsg)} µs of CPU each${median})`,
      ),
    );
  }
  if (r.burst.length) {
    L.push('');
    L.push(
      ...wrap(`Burst: ${count(r.run.burst ?? 0)} messages sent in one synchronous loop, timed from the first send()${median}`),
    );
    // Against a real agent nothing is timed at the agent: the "delivered ms" column goes.
    const atAgent = r.agent.counted;
    const rows = r.burst.map((x) => [
      x.label,
      num(x.median.sendLoopMs),
      num(x.median.drainedMs),
      ...(atAgent ? [num(x.median.deliveredMs)] : []),
      rate(x.median.deliveredPerSec),
      x.vsNaive === null ? '–' : `${x.vsNaive.toFixed(2)}x`,
      num(x.median.cpuUsPerMsg),
      count(x.median.delivered),
      count(x.median.dropped),
    ]);
    if (r.ceiling) {
      rows.push([
        'JSON.stringify only',
        '',
        '',
        ...(atAgent ? [''] : []),
        rate(r.ceiling.perSec),
        r.ceiling.vsNaive === null ? '–' : `${r.ceiling.vsNaive.toFixed(2)}x`,
        num(r.ceiling.cpuUsPerMsg),
        '',
        '',
      ]);
    }
    L.push(
      ...table(
        [
          ['', 'send loop', 'drained', ...(atAgent ? [got] : []), got, '', 'CPU', '', ''],
          ['sender', 'ms', 'ms', ...(atAgent ? ['ms'] : []), 'msg/s', 'vs naive', 'µs/msg', got, 'dropped'],
        ],
        rows,
      ),
    );
  }

  const notes: string[] = [];
  if (r.paced.length) {
    notes.push(
      'CPU: process CPU time (user + system, a native I/O thread included) over the paced window; ' +
        'loop delay: how late a 10 ms timer ran (perf_hooks.monitorEventLoopDelay).',
    );
  }
  if (r.burst.length) {
    notes.push(
      `drained: the sender's queue found empty (checked each ms), all written to the socket; ${r.agent.counted ? 'delivered: the simulator had read the last message' : 'written msg/s: messages / drained time'}.`,
    );
  }
  if (r.burst.length && r.ceiling) {
    notes.push(
      'JSON.stringify only: telemetry frames built per second on one core with JSON.stringify, no I/O: the most a sender ' +
        'that calls it per message can deliver. The native transport writes the shapes it has seen as bytes without it.',
    );
  }
  if (notes.length) {
    L.push('');
    for (const note of notes) L.push(...wrap(note));
  }
  for (const w of r.warnings) L.push(...wrap(`warning: ${w}`));
  for (const f of r.failures) L.push(...wrap(`FAILED: ${LABEL[f.sender]} (round ${f.round}): ${f.message}`));
  return L.join('\n') + '\n';
}
