// iottly-sdk-bench's command line: the flags, their checks and the help text. Every mistake is a
// UsageError whose message names the flag and what was wrong; the command exits 2 on it.

import { resolveOptions } from '../options';

/** The SDK's own defaults, so that the help never disagrees with them. */
export const SDK_DEFAULTS = resolveOptions({});
const mib = (n: number): string => (n % 1048576 === 0 ? `${n / 1048576} MiB` : `${n} bytes`);
const FRAME_LIMIT_TEXT = mib(SDK_DEFAULTS.maxFrameBytes);
const QUEUE_BOUND_TEXT = mib(SDK_DEFAULTS.maxQueueBytes);

export const DEFAULT_RATES = [100, 1000] as const;
/** --seconds when --rate is given. */
export const DEFAULT_SECONDS = 10;
/** Seconds per rate in the default run (no --rate, no --burst), which must stay under a minute. */
export const DEFAULT_RUN_SECONDS = 3;
/** Largest default burst, in messages; it is also bounded in bytes (burstBudgetBytes). */
export const DEFAULT_BURST_MAX = 20_000;
export const MAX_RATE = 1_000_000;
export const MAX_BURST = 10_000_000;
export const MAX_SECONDS = 3600;
export const MAX_ROUNDS = 20;

/** The flag that makes the command a sender child (see sender.ts); never shown in --help. */
export const SENDER_FLAG = '--internal-sender';

export const USAGE = `Usage: iottly-sdk-bench [options]

Measures what sending telemetry with iottly-sdk costs on this machine: each transport
that loads here (js, and native when the addon loads) beside a naive node:net client
(one socket.write of JSON.stringify per message) and the JSON.stringify-only rate of
the payload (the ceiling). Each sender runs in its own process, one after the other.

With neither --rate nor --burst it runs ${DEFAULT_RATES.join(' and ')} msg/s for ${DEFAULT_RUN_SECONDS} s each, then a
burst: 6 s of paced sending per sender, about 20 s in all on a 2-core x86-64 PC.

Options:
  --rate N[,N...]     paced sending at N messages/s (1 to ${MAX_RATE}); several rates
                      may be given, separated by commas or by repeating --rate.
                      Reports CPU per message, CPU % of one core, event-loop delay
                      p50/p99, peak RSS, delivered and dropped
  --seconds S         how long each paced rate runs (default ${DEFAULT_SECONDS} with --rate,
                      ${DEFAULT_RUN_SECONDS} in the default run; at most ${MAX_SECONDS})
  --burst N           send N messages in one synchronous loop (1 to ${MAX_BURST}) and
                      time until the queue drained and the agent had them all.
                      Default run: ${DEFAULT_BURST_MAX} messages, fewer if the frames would
                      pass 3 MiB (under the SDK's ${QUEUE_BOUND_TEXT} queue bound). Every sender
                      first sends a warm-up of up to 2000 messages, not measured
  --payload FILE      a JSON file with one message object, or an array of message
                      objects sent in turn (default: a small sensor reading). Each
                      telemetry frame must fit the SDK's frame limit (${FRAME_LIMIT_TEXT})
  --rounds N          repeat every sender N times, senders interleaved, and report
                      the median (default 1, at most ${MAX_ROUNDS})
  --max-queue-bytes N the SDK's maxQueueBytes for the SDK senders (default: the SDK's
                      default, ${QUEUE_BOUND_TEXT}). A burst whose frames pass it may drop
                      its oldest messages, by design
  --socket PATH       measure against the real agent listening on PATH instead of
                      the simulator: messages really go to the agent and on to the
                      iottly cloud. Needs --channel
  --channel NAME      the channel every message is sent to (needed with --socket)
  --json              print one JSON document on stdout instead of the tables
  --version           print the package version
  -h, --help          print this help

Progress goes to stderr, one line per step. Without --socket the shipped agent
simulator listens on a temporary socket in this process. Exit status: 0 when the run
completed, 1 when it could not (an agent that never answered, a sender that failed),
2 for bad arguments or a bad payload file.`;

export interface BenchArgs {
  /** Paced rates in msg/s, in the order given; empty: no paced run. */
  rates: number[];
  seconds: number;
  /** Messages in the burst; 'default' = sized from the payload; null: no burst. */
  burst: number | 'default' | null;
  payloadFile: string | null;
  rounds: number;
  maxQueueBytes: number | null;
  socketPath: string | null;
  channel: string | null;
  json: boolean;
  help: boolean;
  version: boolean;
  /** Neither --rate nor --burst was given. */
  defaultRun: boolean;
}

export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The flags a user may give (what an unknown flag is compared with). */
export const FLAGS = [
  '--rate',
  '--seconds',
  '--burst',
  '--payload',
  '--rounds',
  '--max-queue-bytes',
  '--socket',
  '--channel',
  '--json',
  '--version',
  '--help',
] as const;

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
function distance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    d.push([i]);
    for (let j = 1; j <= b.length; j++) d[i]![j] = i === 0 ? j : 0;
  }
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known flag closest to `flag`, if it is close enough to be a likely typo. */
export function closestFlag(flag: string): string | null {
  const bare = flag.replace(/^-+/, '').toLowerCase();
  let best: string | null = null;
  let bestD = Infinity;
  for (const f of FLAGS) {
    const name = f.slice(2);
    // A prefix (--sec, --max-queue) is what people type for a long flag.
    const dd = name.startsWith(bare) && bare.length >= 2 ? 0.5 : distance(bare, name);
    if (dd < bestD) {
      bestD = dd;
      best = f;
    }
  }
  const limit = Math.max(2, Math.floor(bare.length / 3));
  return best !== null && bestD <= limit ? best : null;
}

const describe = (raw: string): string => JSON.stringify(raw);

function wholeNumber(flag: string, raw: string, min: number, max: number, unit: string): number {
  const s = raw.trim().replace(/_/g, '');
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be a whole number of ${unit} from ${min} to ${max}, got ${describe(raw)}`);
  }
  return n;
}

export function parseArgs(argv: readonly string[]): BenchArgs {
  const a: BenchArgs = {
    rates: [],
    seconds: DEFAULT_SECONDS,
    burst: null,
    payloadFile: null,
    rounds: 1,
    maxQueueBytes: null,
    socketPath: null,
    channel: null,
    json: false,
    help: false,
    version: false,
    defaultRun: false,
  };
  let secondsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i] as string;
    let inline: string | undefined;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    if (eq !== -1) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[i + 1];
      if (v === undefined || (v.startsWith('--') && v.length > 2)) throw new UsageError(`${arg} needs a value`);
      i++;
      return v;
    };
    const flag = (): void => {
      if (inline !== undefined) throw new UsageError(`${arg} takes no value, got ${describe(inline)}`);
    };
    switch (arg) {
      case '-h':
      case '--help':
        flag();
        a.help = true;
        break;
      case '--version':
        flag();
        a.version = true;
        break;
      case '--json':
        flag();
        a.json = true;
        break;
      case '--rate': {
        const raw = value();
        const parts = raw.split(',');
        for (const part of parts) a.rates.push(wholeNumber('--rate', part, 1, MAX_RATE, 'messages per second'));
        break;
      }
      case '--seconds': {
        const raw = value();
        const s = raw.trim();
        const n = Number(s);
        if (!/^\d+(\.\d+)?$/.test(s) || !(n > 0) || n > MAX_SECONDS) {
          throw new UsageError(`--seconds must be a number of seconds above 0 and at most ${MAX_SECONDS}, got ${describe(raw)}`);
        }
        a.seconds = n;
        secondsGiven = true;
        break;
      }
      case '--burst':
        a.burst = wholeNumber('--burst', value(), 1, MAX_BURST, 'messages');
        break;
      case '--rounds':
        a.rounds = wholeNumber('--rounds', value(), 1, MAX_ROUNDS, 'rounds');
        break;
      case '--max-queue-bytes':
        a.maxQueueBytes = wholeNumber('--max-queue-bytes', value(), 1024, Number.MAX_SAFE_INTEGER, 'bytes');
        break;
      case '--payload': {
        const v = value();
        if (v.length === 0) throw new UsageError('--payload must name a file');
        a.payloadFile = v;
        break;
      }
      case '--socket': {
        const v = value();
        if (v.length === 0) throw new UsageError('--socket must name the agent\'s socket');
        a.socketPath = v;
        break;
      }
      case '--channel': {
        const v = value();
        if (v.length === 0) throw new UsageError('--channel must not be empty');
        a.channel = v;
        break;
      }
      default: {
        if (arg === SENDER_FLAG) throw new UsageError(`${SENDER_FLAG} is for the command's own child processes`);
        if (arg.startsWith('-')) {
          const near = closestFlag(arg);
          throw new UsageError(`unknown flag ${arg}${near ? `; did you mean ${near}?` : ''} (see --help)`);
        }
        throw new UsageError(`unexpected argument ${describe(arg)}: every option is a flag (see --help)`);
      }
    }
  }
  if (a.help || a.version) return a;
  if (a.socketPath !== null && a.channel === null) {
    throw new UsageError(
      '--socket needs --channel NAME: against a real agent every message goes on to the iottly cloud, ' +
        'so name the channel it should arrive on (one your project can tell apart)',
    );
  }
  if (a.rates.length === 0 && a.burst === null) {
    a.defaultRun = true;
    a.rates = [...DEFAULT_RATES];
    a.burst = 'default';
    if (!secondsGiven) a.seconds = DEFAULT_RUN_SECONDS;
  } else if (secondsGiven && a.rates.length === 0) {
    throw new UsageError('--seconds sets how long each --rate runs; give --rate too (a burst is not timed by it)');
  }
  a.rates = [...new Set(a.rates)];
  return a;
}
