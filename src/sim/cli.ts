// iottly-agent-sim: run the agent simulator from a shell.

import type { SimClient } from './connection';
import { AgentSimulator, DEFAULT_AGENT_VERSION, DEFAULT_SOCKET_PATH } from './simulator';

export const USAGE = `Usage: iottly-agent-sim [options]

Plays the iottly agent's side of the SDK socket: accepts SDK connections, answers
the hello with sdkinit, logs what arrives and can push commands and status signals.

Options:
  --socket PATH              socket to listen on
                             (default ${DEFAULT_SOCKET_PATH})
  --agent-version X.Y.Z      agent version sent in sdkinit (default ${DEFAULT_AGENT_VERSION})
  --no-sdkinit               behave like an agent older than 1.8.0: send no sdkinit
  --sdkinit-delay MS         wait MS after a hello before answering (default 0)
  --connection-status STATE  send connectionstatus STATE (connected|disconnected)
                             after each handshake
  --command TYPE:JSON        a command to push, e.g. --command 'restart:{"delay":5}';
                             repeatable; TYPE alone sends {} as parameters
  --command-every MS         push every --command to every client each MS
  --flap-every MS            every MS, report MQTT down, then up again after --flap-down
  --flap-down MS             how long MQTT stays down in a flap (default min(1000, every/2))
  --reboot-every MS          every MS, do a scheduled reboot ("stopping", close, listen again)
  --reboot-down MS           how long the socket stays away in a reboot (default 300)
  --duration MS              exit by itself after MS
  --quiet                    log nothing
  --version                  print the package version
  -h, --help                 print this help

Logs one line per connection, hello, goodbye, call, error report and invalid frame;
telemetry is summarised in one rate line per second. SIGINT or SIGTERM closes the
socket (removing the file) and exits 0. Bad arguments exit 2. The default socket path
is the agent's, which needs root: give another with --socket, and the same path to
the SDK as socketPath.`;

export interface CliCommand {
  type: string;
  params: unknown;
}

export interface CliOptions {
  socketPath: string;
  version: string | null;
  sdkinitDelayMs: number;
  connectionStatus: 'connected' | 'disconnected' | null;
  quiet: boolean;
  commands: CliCommand[];
  commandEveryMs: number | null;
  flapEveryMs: number | null;
  flapDownMs: number | null;
  rebootEveryMs: number | null;
  rebootDownMs: number;
  durationMs: number | null;
  help: boolean;
  /** --version alone: print the package version and exit. */
  printVersion: boolean;
  /** Said on stderr before starting (an old spelling, for one). */
  notes: string[];
}

export interface CliIo {
  /** One line of normal output (no trailing newline). */
  out?: (line: string) => void;
  /** One line of error output (no trailing newline). */
  err?: (line: string) => void;
  /** Install SIGINT/SIGTERM handlers; default true. */
  handleSignals?: boolean;
  /** Resolves main's run early, as a signal would. */
  stop?: AbortSignal;
}

export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const VERSION_RE = /^\d+\.\d+\.\d+$/;

export function parseArgs(argv: readonly string[]): CliOptions {
  const o: CliOptions = {
    socketPath: DEFAULT_SOCKET_PATH,
    version: DEFAULT_AGENT_VERSION,
    sdkinitDelayMs: 0,
    connectionStatus: null,
    quiet: false,
    commands: [],
    commandEveryMs: null,
    flapEveryMs: null,
    flapDownMs: null,
    rebootEveryMs: null,
    rebootDownMs: 300,
    durationMs: null,
    help: false,
    printVersion: false,
    notes: [],
  };
  let versionGiven = false;
  /** Set when --version was given a value (its meaning before --agent-version): a note is due. */
  let oldVersionSpelling = false;
  let noSdkinit = false;
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
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      i++;
      return v;
    };
    const ms = (allowZero: boolean): number => {
      const raw = value();
      const n = Number(raw);
      if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || (!allowZero && n === 0)) {
        throw new UsageError(`${arg} must be a ${allowZero ? 'non-negative' : 'positive'} whole number of milliseconds, got ${JSON.stringify(raw)}`);
      }
      return n;
    };
    const flag = () => {
      if (inline !== undefined) throw new UsageError(`${arg} takes no value`);
    };
    switch (arg) {
      case '-h':
      case '--help':
        flag();
        o.help = true;
        break;
      case '--socket': {
        const v = value();
        if (v.length === 0) throw new UsageError('--socket must not be empty');
        o.socketPath = v;
        break;
      }
      case '--version': {
        // Alone: print the package version, as every CLI does. With an X.Y.Z after it: the old
        // spelling of --agent-version, still accepted.
        const next = inline ?? argv[i + 1];
        if (next === undefined || !VERSION_RE.test(next)) {
          flag();
          o.printVersion = true;
          break;
        }
        o.version = value();
        versionGiven = true;
        oldVersionSpelling = true;
        break;
      }
      case '--agent-version': {
        const v = value();
        if (!VERSION_RE.test(v)) throw new UsageError(`--agent-version must look like X.Y.Z, got ${JSON.stringify(v)}`);
        o.version = v;
        versionGiven = true;
        break;
      }
      case '--no-sdkinit':
        flag();
        noSdkinit = true;
        break;
      case '--sdkinit-delay':
        o.sdkinitDelayMs = ms(true);
        break;
      case '--connection-status': {
        const v = value();
        if (v !== 'connected' && v !== 'disconnected') {
          throw new UsageError(`--connection-status must be connected or disconnected, got ${JSON.stringify(v)}`);
        }
        o.connectionStatus = v;
        break;
      }
      case '--quiet':
      case '-q':
        flag();
        o.quiet = true;
        break;
      case '--command':
        o.commands.push(parseCommand(value()));
        break;
      case '--command-every':
        o.commandEveryMs = ms(false);
        break;
      case '--flap-every':
        o.flapEveryMs = ms(false);
        break;
      case '--flap-down':
        o.flapDownMs = ms(true);
        break;
      case '--reboot-every':
        o.rebootEveryMs = ms(false);
        break;
      case '--reboot-down':
        o.rebootDownMs = ms(true);
        break;
      case '--duration':
        o.durationMs = ms(false);
        break;
      default:
        throw new UsageError(
          arg.startsWith('-') ? `unknown option ${arg}` : `unexpected argument ${JSON.stringify(arg)}`,
        );
    }
  }
  if (noSdkinit && versionGiven) throw new UsageError('--agent-version and --no-sdkinit exclude each other');
  if (oldVersionSpelling) o.notes.push('--version X.Y.Z is now spelt --agent-version X.Y.Z (--version alone prints the package version)');
  if (noSdkinit) o.version = null;
  if (o.commandEveryMs !== null && o.commands.length === 0) {
    throw new UsageError('--command-every needs at least one --command TYPE:JSON');
  }
  if (o.commands.length > 0 && o.commandEveryMs === null) {
    throw new UsageError('--command needs --command-every MS');
  }
  if (o.flapDownMs !== null && o.flapEveryMs === null) throw new UsageError('--flap-down needs --flap-every MS');
  return o;
}

function parseCommand(spec: string): CliCommand {
  const colon = spec.indexOf(':');
  const type = colon === -1 ? spec : spec.slice(0, colon);
  const json = colon === -1 ? '' : spec.slice(colon + 1);
  if (type.length === 0) throw new UsageError(`--command needs a TYPE before the colon, got ${JSON.stringify(spec)}`);
  if (json.trim().length === 0) return { type, params: {} };
  try {
    return { type, params: JSON.parse(json) };
  } catch (err) {
    throw new UsageError(`--command ${type}: parameters are not valid JSON (${(err as Error).message})`);
  }
}

function clip(s: string, max = 160): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function who(c: SimClient): string {
  return c.name === null ? `#${c.id}` : `#${c.id} ${JSON.stringify(c.name)}`;
}

function timestamp(): string {
  return new Date().toISOString().slice(11, 23);
}

const INVALID_LINES_PER_SECOND = 10;

export async function main(argv: readonly string[] = process.argv.slice(2), io: CliIo = {}): Promise<number> {
  const out = io.out ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const err = io.err ?? ((line: string) => void process.stderr.write(`${line}\n`));

  let opts: CliOptions;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`iottly-agent-sim: ${e.message}`);
    err('Try iottly-agent-sim --help');
    return 2;
  }
  if (opts.help) {
    out(USAGE);
    return 0;
  }
  if (opts.printVersion) {
    out(packageVersion());
    return 0;
  }
  for (const note of opts.notes) err(`iottly-agent-sim: note: ${note}`);

  const log = opts.quiet ? (_line: string) => {} : (line: string) => out(`${timestamp()} ${line}`);
  // keepFrames off: a long-running simulator must not grow with what it receives.
  const sim = new AgentSimulator({
    socketPath: opts.socketPath,
    version: opts.version,
    sdkinitDelayMs: opts.sdkinitDelayMs,
    connectionStatusOnHello: opts.connectionStatus,
    keepFrames: false,
  });

  let invalidLogged = 0;
  let invalidSuppressed = 0;
  if (!opts.quiet) {
    const sampled = new WeakSet<SimClient>();
    // A connection is logged once it sends its first bytes: one that closes without a byte is not an
    // SDK but something checking whether the socket is in use (a second simulator, for one).
    const spoke = new WeakSet<SimClient>();
    sim.on('connection', (c) =>
      c.socket.prependOnceListener('data', () => {
        spoke.add(c);
        log(`${who(c)} connected`);
      }),
    );
    sim.on('hello', (c) => {
      const order = c.helloFirst ? '' : ' (WARNING: not the first frame on this connection)';
      log(`${who(c)} hello, sdk version ${c.sdkVersion ?? '(none)'}${order}`);
      if (opts.version === null) log(`${who(c)} no sdkinit sent (pre-1.8.0 agent)`);
    });
    sim.on('goodbye', (c) => log(`${who(c)} goodbye`));
    sim.on('telemetry', (rec) => {
      if (sampled.has(rec.client)) return;
      sampled.add(rec.client);
      const ch = rec.channel === undefined ? '' : ` channel ${JSON.stringify(rec.channel)}`;
      log(`${who(rec.client)} first telemetry${ch}: ${clip(JSON.stringify(rec.payload))}`);
    });
    sim.on('call', (rec) => log(`${who(rec.client)} call ${JSON.stringify(rec.cmd)} ${clip(JSON.stringify(rec.args) ?? '')}`));
    sim.on('sdkError', (rec) => log(`${who(rec.client)} error report ${rec.type}: ${clip(rec.msg)}`));
    sim.on('invalid', (c, raw, reason) => {
      if (invalidLogged >= INVALID_LINES_PER_SECOND) {
        invalidSuppressed++;
        return;
      }
      invalidLogged++;
      log(`${who(c)} invalid frame (${reason}): ${clip(raw, 120)}`);
    });
    sim.on('disconnect', (c) => {
      if (spoke.has(c)) log(`${who(c)} disconnected`);
      else log(`a connection closed without sending anything (a program checking whether ${sim.socketPath} is in use?)`);
    });
  }

  let stopping = false;
  let stopReason = '';
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    stopReason = reason;
    wake();
  };
  // Installed before listening, so a signal during start-up still closes the socket cleanly.
  const onSignal = (sig: NodeJS.Signals) => stop(sig);
  const handleSignals = io.handleSignals ?? true;
  if (handleSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  const onAbort = () => stop('stop requested');
  if (io.stop) {
    if (io.stop.aborted) stop('stop requested');
    else io.stop.addEventListener('abort', onAbort, { once: true });
  }
  const cleanup = () => {
    if (handleSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    io.stop?.removeEventListener('abort', onAbort);
  };

  try {
    await sim.listen();
  } catch (e) {
    cleanup();
    const error = e as NodeJS.ErrnoException;
    err(`iottly-agent-sim: ${error.message}`);
    if ((error.code === 'EACCES' || error.code === 'EPERM' || error.code === 'ENOENT') && opts.socketPath === DEFAULT_SOCKET_PATH) {
      err(`iottly-agent-sim: the default path is the agent's and needs root: give another with --socket PATH (and the same path to the SDK as socketPath)`);
    } else if (error.code === 'EACCES' || error.code === 'EPERM') {
      err('iottly-agent-sim: choose a path this user may create, with --socket PATH');
    }
    return 1;
  }
  log(
    `listening on ${sim.socketPath}, ` +
      (opts.version === null ? 'no sdkinit (pre-1.8.0 agent)' : `agent version ${opts.version}`),
  );

  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, fn: () => void) => timers.push(setInterval(fn, ms));

  let lastTelemetry = 0;
  let lastBytes = 0;
  every(1000, () => {
    const t = sim.counts.telemetry;
    const b = sim.counts.bytes;
    if (t !== lastTelemetry) {
      log(`telemetry: ${t - lastTelemetry} msg/s, ${((b - lastBytes) / 1024).toFixed(1)} KiB/s, total ${t}`);
    }
    if (invalidSuppressed > 0) log(`(${invalidSuppressed} more invalid frames not shown)`);
    lastTelemetry = t;
    lastBytes = b;
    invalidLogged = 0;
    invalidSuppressed = 0;
  });

  if (opts.commandEveryMs !== null) {
    every(opts.commandEveryMs, () => {
      for (const cmd of opts.commands) {
        const n = sim.pushCommand(cmd.type, cmd.params);
        if (n > 0) log(`-> command ${JSON.stringify(cmd.type)} to ${n} client(s)`);
      }
    });
  }

  let flapUp: NodeJS.Timeout | null = null;
  if (opts.flapEveryMs !== null) {
    const everyMs = opts.flapEveryMs;
    const downMs = opts.flapDownMs ?? Math.min(1000, Math.floor(everyMs / 2));
    every(everyMs, () => {
      if (flapUp !== null) return;
      const n = sim.sendConnectionStatus('disconnected');
      log(`-> connectionstatus "disconnected" to ${n} client(s), up again in ${downMs} ms`);
      flapUp = setTimeout(() => {
        flapUp = null;
        const m = sim.sendConnectionStatus('connected');
        log(`-> connectionstatus "connected" to ${m} client(s)`);
      }, downMs);
    });
  }

  let rebooting: Promise<void> | null = null;
  if (opts.rebootEveryMs !== null) {
    const downMs = opts.rebootDownMs;
    every(opts.rebootEveryMs, () => {
      if (rebooting !== null || stopping) return;
      log(`reboot: -> agentstatus "stopping" to ${sim.clients.length} client(s)`);
      rebooting = sim
        .reboot({ downMs })
        .then(
          () => {
            if (!stopping) log(`reboot: listening again on ${sim.socketPath}`);
          },
          (e: Error) => {
            if (stopping) return;
            err(`iottly-agent-sim: reboot failed: ${e.message}`);
            stop('reboot failed');
          },
        )
        .finally(() => {
          rebooting = null;
        });
    });
  }

  if (opts.durationMs !== null) {
    const ms = opts.durationMs;
    timers.push(setTimeout(() => stop(`duration of ${ms} ms reached`), ms));
  }

  await stopped;
  for (const t of timers) clearInterval(t);
  if (flapUp !== null) clearTimeout(flapUp);
  await sim.close();
  if (rebooting !== null) await rebooting;
  await sim.close(); // a reboot that was between its close and listen finishes closed as well
  cleanup();
  const c = sim.counts;
  log(
    `${stopReason}: closed ${sim.socketPath}; connections ${c.connections}, hellos ${c.hellos}, ` +
      `goodbyes ${c.goodbyes}, telemetry ${c.telemetry}, calls ${c.calls}, errors ${c.errors}, invalid ${c.invalid}`,
  );
  return 0;
}

/** The version of the package this command belongs to (dist/sim/cli.js -> package.json). */
function packageVersion(): string {
  return (require('../../package.json') as { version: string }).version;
}
