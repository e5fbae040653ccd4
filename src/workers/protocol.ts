// What crosses the thread boundary between the pool manager (pool.ts) and the worker entry
// (thread.ts). Params go in as the command frame's own bytes; telemetry comes back as JSON text.

/** One telemetry message: the payload as JSON text and the channel ('' for none). */
export type Outbound = [payloadJson: string, channel: string];

export interface WorkerTask {
  id: number;
  cmdType: string;
  /** Absolute path of the handler module. */
  path: string;
  exportName: string;
  /** The command frame (one JSON line), transferred; params are `data[cmdType]`. */
  frame: ArrayBuffer;
  /** 0 when the task has no time limit; else counted from the handler's start, which is announced. */
  timeoutMs: number;
}

export interface WorkerTaskResult {
  /** Telemetry batches posted during the task; the main thread waits for all of them before the result. */
  batches: number;
  /** Telemetry sent but not yet posted when the handler finished. */
  tail: Outbound[];
  /** The return value as JSON text, when it was a plain object. */
  result?: string;
  error?: RemoteError;
}

export interface RemoteError {
  type: string;
  message: string;
  stack?: string;
}

/** Key marking a telemetry batch among the messages a worker posts to its parent port. */
export const TELEMETRY_MESSAGE = 'iottlyTelemetry';

/** Posted when a task with a time limit starts, so that the main thread's clock starts with it. */
export const TASK_STARTED = 'iottlyTaskStarted';

export interface TaskStartedMessage {
  [TASK_STARTED]: number;
}

export interface TelemetryBatchMessage {
  [TELEMETRY_MESSAGE]: true;
  id: number;
  batch: Outbound[];
}

/** Main thread -> every worker, over a BroadcastChannel. */
export type AbortNotice = { kind: 'stop' };

/** The error frame's type and message, derived exactly as the SDK does for main-thread callbacks. */
export function describeError(err: unknown): RemoteError {
  if (err instanceof Error) {
    return { type: err.name || err.constructor.name, message: err.message, stack: err.stack };
  }
  return { type: typeof err, message: String(err) };
}

/** An Error on the main thread that reports as the worker's error did. */
export function rebuildError(remote: RemoteError): Error {
  const err = new Error(remote.message);
  err.name = remote.type;
  if (remote.stack) err.stack = remote.stack;
  return err;
}
