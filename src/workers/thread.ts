// The piscina worker entry: loads the user's handler module, runs the export with the command's
// params and a context, and hands telemetry back to the main thread as JSON text (see
// bench/worker-boundary.md for why these encodings).
import { BroadcastChannel, parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { isPlainObject, stringifyPayload } from '../codec';
import { describe } from '../describe';
import type { WorkerContext } from '../types';
import {
  type AbortNotice,
  type Outbound,
  type TaskStartedMessage,
  type TelemetryBatchMessage,
  type WorkerTask,
  type WorkerTaskResult,
  TASK_STARTED,
  TELEMETRY_MESSAGE,
  describeError,
} from './protocol';

// A batch goes out when it is this long, when the previous one left this long ago (so that a
// handler busy for seconds still reports progress), or at the next turn of the worker's event loop.
const FLUSH_AT = 256;
const FLUSH_INTERVAL_MS = 5;
const utf8 = new TextDecoder('utf-8', { fatal: true });

// `import()` kept as is: TypeScript's CommonJS output would turn it into require().
const importModule = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<Record<string, unknown>>;

type Handler = (params: unknown, context: WorkerContext) => unknown;
const handlers = new Map<string, Promise<Handler>>();

async function loadModule(path: string): Promise<{ mod: unknown; esm: boolean }> {
  if (!path.endsWith('.mjs')) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      return { mod: require(path), esm: false };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw err;
    }
  }
  return { mod: await importModule(pathToFileURL(path).href), esm: true };
}

function loadHandler(path: string, exportName: string): Promise<Handler> {
  const key = `${exportName}\0${path}`;
  let handler = handlers.get(key);
  if (!handler) {
    handler = loadModule(path).then(({ mod, esm }) => {
      const m = mod as Record<string, unknown> | ((...args: unknown[]) => unknown);
      let fn: unknown;
      if (exportName === 'default' && !esm) {
        // module.exports = fn, or TypeScript's compiled `export default fn`.
        fn = typeof m === 'function' ? m : (m as Record<string, unknown>)?.default;
      } else {
        fn = (m as Record<string, unknown>)?.[exportName];
      }
      if (typeof fn !== 'function') {
        throw new TypeError(`${path} has no function export '${exportName}' (found ${fn === undefined ? 'nothing' : typeof fn})`);
      }
      return fn as Handler;
    });
    // A module that failed to load is tried again on the next command (it may have been fixed).
    handler.catch(() => handlers.delete(key));
    handlers.set(key, handler);
  }
  return handler;
}

/** Tasks running in this thread, by id, so that an abort notice from the main thread finds them. */
const running = new Map<number, AbortController>();
let stopping = false;

const { abortChannel } = workerData as { abortChannel: string };
const notices = new BroadcastChannel(abortChannel);
notices.unref();
notices.onmessage = (event: unknown) => {
  const notice = (event as { data: AbortNotice }).data;
  if (notice.kind === 'stop') {
    stopping = true;
    for (const controller of running.values()) controller.abort(abortError('the SDK is stopping'));
  }
};

function abortError(message: string): Error {
  return new DOMException(message, 'AbortError');
}

function timeoutError(cmdType: string, timeoutMs: number): Error {
  return new DOMException(`command '${cmdType}' timed out after ${timeoutMs} ms`, 'TimeoutError');
}

class TaskContext implements WorkerContext {
  pending: Outbound[] = [];
  batchesPosted = 0;
  finished = false;
  private flushScheduled: NodeJS.Immediate | null = null;
  private lastFlush = -Infinity;

  constructor(
    private readonly id: number,
    readonly cmdType: string,
    readonly signal: AbortSignal,
  ) {}

  /** An own property bound to this context, so that `const { send } = context` works too. */
  readonly send = (msg: object, channel?: string | null): void => {
    if (!isPlainObject(msg)) throw new TypeError(`msg must be a plain object, got ${describe(msg)}`);
    if (channel !== undefined && channel !== null && typeof channel !== 'string') {
      throw new TypeError(`channel must be a string, got ${describe(channel)}`);
    }
    // The same checks and serialisation as IottlySDK.send(), here, so that errors are thrown at the call.
    this.pending.push([stringifyPayload(msg), channel ? channel : '']);
    if (this.finished || this.pending.length >= FLUSH_AT || performance.now() - this.lastFlush >= FLUSH_INTERVAL_MS) {
      this.flush();
    }
    else if (!this.flushScheduled) {
      this.flushScheduled = setImmediate(() => {
        this.flushScheduled = null;
        this.flush();
      });
    }
  };

  flush(): void {
    if (this.pending.length === 0) return;
    this.lastFlush = performance.now();
    const message: TelemetryBatchMessage = { [TELEMETRY_MESSAGE]: true, id: this.id, batch: this.pending };
    this.pending = [];
    if (!this.finished) this.batchesPosted++;
    parentPort!.postMessage(message);
  }

  /** What has not been posted yet rides back with the task's result. */
  takeTail(): Outbound[] {
    this.finished = true;
    if (this.flushScheduled) {
      clearImmediate(this.flushScheduled);
      this.flushScheduled = null;
    }
    const tail = this.pending;
    this.pending = [];
    return tail;
  }
}

export default async function runTask(task: WorkerTask): Promise<WorkerTaskResult> {
  const controller = new AbortController();
  const context = new TaskContext(task.id, task.cmdType, controller.signal);
  running.set(task.id, controller);
  let timer: NodeJS.Timeout | null = null;
  try {
    if (stopping) controller.abort(abortError('the SDK is stopping'));
    if (task.timeoutMs > 0) {
      parentPort!.postMessage({ [TASK_STARTED]: task.id } satisfies TaskStartedMessage);
      timer = setTimeout(() => controller.abort(timeoutError(task.cmdType, task.timeoutMs)), task.timeoutMs);
    }
    const params = (JSON.parse(utf8.decode(task.frame)) as { data: Record<string, unknown> }).data[task.cmdType];
    const handler = await loadHandler(task.path, task.exportName);
    const value = await handler(params, context);
    const result: WorkerTaskResult = { batches: context.batchesPosted, tail: context.takeTail() };
    if (isPlainObject(value)) result.result = stringifyPayload(value);
    return result;
  } catch (err) {
    return { batches: context.batchesPosted, tail: context.takeTail(), error: describeError(err) };
  } finally {
    if (timer) clearTimeout(timer);
    running.delete(task.id);
  }
}
