import * as os from 'node:os';
import { describe } from '../describe';
import { rejectUnknownKeys } from '../option-names';

/** options.workers: the thread pool that runs worker command handlers. */
export interface WorkerPoolOptions {
  /** Threads kept running once the first worker handler is subscribed. Default 1. */
  minThreads?: number;
  /** Upper bound on threads. Default: available cores - 1, at least 1. */
  maxThreads?: number;
  /** A thread above minThreads exits after this long without work. Default 30000. */
  idleTimeoutMs?: number;
  /** Commands waiting for a thread (per ordered command type, for ordered ones) before new ones are dropped. Default 100. */
  maxQueue?: number;
  /** A handler still running this long after it started fails with a TimeoutError; 0 = no limit. Default 0. */
  taskTimeoutMs?: number;
  /** After an abort (timeout or stop()), how long a handler may take to notice before its thread is terminated. Default 1000. */
  abortGraceMs?: number;
  /**
   * Added to the worker threads' nice value (Linux, macOS; 0-19), so that CPU-bound handlers yield
   * the CPU to the main thread's event loop on a small device. Default 0 (unchanged).
   */
  niceIncrement?: number;
}

export interface ResolvedWorkerOptions {
  minThreads: number;
  maxThreads: number;
  idleTimeoutMs: number;
  maxQueue: number;
  taskTimeoutMs: number;
  abortGraceMs: number;
  niceIncrement: number;
}

function defaultMaxThreads(): number {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, cores - 1);
}

const WORKER_OPTION_NAMES = Object.keys({
  minThreads: true,
  maxThreads: true,
  idleTimeoutMs: true,
  maxQueue: true,
  taskTimeoutMs: true,
  abortGraceMs: true,
  niceIncrement: true,
} satisfies Record<keyof WorkerPoolOptions, true>);

export function resolveWorkerOptions(input: WorkerPoolOptions | undefined | null): ResolvedWorkerOptions {
  if (input === undefined || input === null) input = {};
  if (typeof input !== 'object') throw new TypeError(`options.workers must be an object, got ${describe(input)}`);
  rejectUnknownKeys(input, WORKER_OPTION_NAMES, 'options.workers');
  const maxThreads = integer('maxThreads', input.maxThreads, defaultMaxThreads(), 1);
  const minThreads = integer('minThreads', input.minThreads, Math.min(1, maxThreads), 0);
  if (minThreads > maxThreads) {
    throw new RangeError(`options.workers.minThreads (${minThreads}) must not exceed options.workers.maxThreads (${maxThreads})`);
  }
  return {
    minThreads,
    maxThreads,
    idleTimeoutMs: integer('idleTimeoutMs', input.idleTimeoutMs, 30_000, 0),
    maxQueue: integer('maxQueue', input.maxQueue, 100, 0),
    taskTimeoutMs: integer('taskTimeoutMs', input.taskTimeoutMs, 0, 0),
    abortGraceMs: integer('abortGraceMs', input.abortGraceMs, 1000, 0),
    niceIncrement: niceIncrement(input.niceIncrement),
  };
}

function integer(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw new TypeError(`options.workers.${name} must be a number, got ${describe(value)}`);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`options.workers.${name} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}

function niceIncrement(value: unknown): number {
  const n = integer('niceIncrement', value, 0, 0);
  if (n > 19) throw new RangeError(`options.workers.niceIncrement must be at most 19, got ${n}`);
  return n;
}
