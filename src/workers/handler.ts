import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from '../describe';

/**
 * A command handler that runs in a worker thread: `module` is an absolute path or a `file:` URL,
 * `export` the name of the function it exports ('default' by default).
 */
export interface WorkerHandler {
  readonly module: string | URL;
  readonly export?: string;
  /** Run one command of this type at a time, in arrival order. Default false. */
  readonly ordered?: boolean;
  /** Channel for the telemetry made of the handler's return value. Default none. */
  readonly channel?: string;
}

export interface WorkerHandlerOptions {
  ordered?: boolean;
  channel?: string;
}

/** A WorkerHandler checked and reduced to what the pool needs. */
export interface ResolvedWorkerHandler {
  /** Absolute filesystem path of the module. */
  readonly path: string;
  readonly exportName: string;
  readonly ordered: boolean;
  readonly channel: string | undefined;
}

/**
 * Describe a command handler that runs in a worker thread:
 * `sdk.subscribe('resize', workerHandler(require.resolve('../resize.js'), 'resize', { ordered: true }))`.
 */
export function workerHandler(module: string | URL, exportName = 'default', options: WorkerHandlerOptions = {}): WorkerHandler {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  const handler: WorkerHandler = { module, export: exportName, ...pickDefined(options) };
  resolveWorkerHandler(handler, 'workerHandler()');
  return Object.freeze(handler);
}

function pickDefined(options: WorkerHandlerOptions): WorkerHandlerOptions {
  const out: WorkerHandlerOptions = {};
  if (options.ordered !== undefined) out.ordered = options.ordered;
  if (options.channel !== undefined) out.channel = options.channel;
  return out;
}

/** Whether `value` looks like a worker handler (an object with a `module`), as opposed to a bad argument. */
export function isWorkerHandler(value: unknown): value is WorkerHandler {
  return value !== null && typeof value === 'object' && 'module' in value;
}

export function resolveWorkerHandler(handler: WorkerHandler, what = 'handler'): ResolvedWorkerHandler {
  const { module, ordered = false, channel } = handler;
  const exportName = handler.export ?? 'default';
  let path: string;
  if (module instanceof URL || (typeof module === 'string' && module.startsWith('file:'))) {
    try {
      path = fileURLToPath(module);
    } catch (err) {
      throw new TypeError(`${what}.module is not a valid file: URL (${(err as Error).message})`);
    }
  } else if (typeof module === 'string' && isAbsolute(module)) {
    path = module;
  } else {
    throw new TypeError(
      `${what}.module must be an absolute path or a file: URL (e.g. require.resolve('../handler.js') or ` +
        `new URL('../handler.mjs', import.meta.url)), got ${describe(module)}`,
    );
  }
  if (!existsSync(path)) throw new TypeError(`${what}.module ${path} does not exist`);
  if (typeof exportName !== 'string' || exportName.length === 0) {
    throw new TypeError(`${what}.export must be a non-empty string, got ${describe(exportName)}`);
  }
  if (typeof ordered !== 'boolean') throw new TypeError(`${what}.ordered must be a boolean, got ${describe(ordered)}`);
  if (channel !== undefined && typeof channel !== 'string') {
    throw new TypeError(`${what}.channel must be a string, got ${describe(channel)}`);
  }
  return { path, exportName, ordered, channel: channel ? channel : undefined };
}
