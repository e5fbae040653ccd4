// The pool of worker threads that runs worker command handlers. Loaded only when the first worker
// handler is subscribed, so an application without any never loads piscina nor starts a thread.
import { BroadcastChannel, type Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import type { ResolvedWorkerOptions } from './options';
import type { CommandDropReason } from '../types';
import type { ResolvedWorkerHandler } from './handler';
import {
  type AbortNotice,
  type Outbound,
  type TaskStartedMessage,
  type TelemetryBatchMessage,
  type WorkerTask,
  type WorkerTaskResult,
  TASK_STARTED,
  TELEMETRY_MESSAGE,
  rebuildError,
} from './protocol';

/** What the pool needs from the SDK. */
export interface WorkerSink {
  /** Send telemetry whose payload was serialised (and checked as send() does) in the worker. */
  sendJson(payloadJson: string, channel: string | undefined): void;
  /** Report a failed command to the agent, as for a main-thread callback. */
  failed(source: string, err: unknown): void;
  dropped(cmdType: string, reason: CommandDropReason): void;
}

interface Command {
  cmdType: string;
  handler: ResolvedWorkerHandler;
  /** A copy of the command frame, transferred to the worker. */
  frame: ArrayBuffer;
}

interface Task {
  id: number;
  cmdType: string;
  channel: string | undefined;
  /** Telemetry batches from the worker delivered so far. */
  batchesSeen: number;
  /** The worker's answer, held until every batch posted before it has been delivered. */
  answer: WorkerTaskResult | null;
  /** Piscina's own cancellation: dequeues the task, or terminates the thread running it. */
  hard: AbortController;
  timer: NodeJS.Timeout | null;
  timedOut: boolean;
  settle: () => void;
}

interface OrderedQueue {
  busy: boolean;
  backlog: Command[];
}

const WORKER_ENTRY = join(__dirname, 'thread.js');
let channelSeq = 0;

export class WorkerPool {
  private pool: Piscina | null = null;
  private notices: BroadcastChannel | null = null;
  private readonly tasks = new Map<number, Task>();
  private readonly ordered = new Map<string, OrderedQueue>();
  private nextId = 1;
  private stopping = false;
  /**
   * Threads terminated by a hard abort whose 'exit' has not come yet. Piscina replaces such a
   * thread when its 'exit' comes, unless the pool is being destroyed at that moment: an exit that
   * came after destroy() had finished would start minThreads new threads that nothing ever stops.
   * So stop() waits for these exits before it destroys the pool.
   */
  private readonly exiting = new Set<Promise<void>>();

  constructor(
    private readonly options: ResolvedWorkerOptions,
    private readonly sink: WorkerSink,
  ) {}

  /** Threads the pool runs now (0 before the first command or after stop()). */
  get threadCount(): number {
    return this.pool ? this.pool.threads.length : 0;
  }

  /** Start the pool's threads ahead of the first command. */
  warm(): void {
    if (!this.stopping) this.ensurePool();
  }

  dispatch(cmdType: string, handler: ResolvedWorkerHandler, frame: Buffer): void {
    if (this.stopping) {
      this.sink.dropped(cmdType, 'stop');
      return;
    }
    // The frame's own bytes are the cheapest way across (bench/worker-boundary.md). Copied now: the
    // transport reuses its buffer once this returns, and the command may wait in a queue.
    const bytes = new ArrayBuffer(frame.length);
    new Uint8Array(bytes).set(frame);
    const command: Command = { cmdType, handler, frame: bytes };
    if (!handler.ordered) {
      void this.run(command);
      return;
    }
    let queue = this.ordered.get(cmdType);
    if (!queue) {
      queue = { busy: false, backlog: [] };
      this.ordered.set(cmdType, queue);
    }
    if (queue.busy) {
      if (queue.backlog.length >= this.options.maxQueue) this.sink.dropped(cmdType, 'queueFull');
      else queue.backlog.push(command);
      return;
    }
    queue.busy = true;
    void this.runOrdered(queue, command);
  }

  /**
   * Abort what runs (the handlers' signals fire), wait for it at most `boundMs` (and at most
   * abortGraceMs), terminate what ignored the abort, then destroy the pool and its threads.
   */
  async stop(boundMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    try {
      for (const [cmdType, queue] of this.ordered) {
        for (let i = 0; i < queue.backlog.length; i++) this.sink.dropped(cmdType, 'stop');
        queue.backlog = [];
      }
      const pool = this.pool;
      if (!pool) return;
      if (this.tasks.size > 0) {
        this.notices!.postMessage({ kind: 'stop' } satisfies AbortNotice);
        const settled = Promise.all([...this.tasks.values()].map((t) => new Promise<void>((r) => chainSettle(t, r))));
        const grace = Math.min(this.options.abortGraceMs, boundMs);
        let timer: NodeJS.Timeout | undefined;
        const expired = new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), grace);
        });
        const inTime = await Promise.race([settled.then(() => true), expired]);
        clearTimeout(timer);
        if (!inTime) {
          for (const t of this.tasks.values()) this.hardAbort(t, new Error('the SDK is stopping'));
          await settled;
        }
      }
      await Promise.all(this.exiting);
      this.pool = null;
      await pool.destroy();
      // destroy() resolves on the threads' 'exit' events, which can come in the same event-loop turn
      // as its close() of their message ports; a port's handle is released only in that turn's close
      // phase. Resolve after it, so that no handle of the pool outlives stop().
      await pastClosePhase();
      this.notices?.close();
      this.notices = null;
    } finally {
      this.ordered.clear();
      this.stopping = false;
    }
  }

  private async runOrdered(queue: OrderedQueue, first: Command): Promise<void> {
    let command: Command | undefined = first;
    while (command) {
      await this.run(command);
      command = this.stopping ? undefined : queue.backlog.shift();
    }
    queue.busy = false;
  }

  private ensurePool(): Piscina {
    if (this.pool) return this.pool;
    const name = `iottly-sdk-workers-${process.pid}-${++channelSeq}-${Math.random().toString(36).slice(2)}`;
    this.notices = new BroadcastChannel(name);
    this.notices.unref();
    const { minThreads, maxThreads, idleTimeoutMs, niceIncrement } = this.options;
    const pool = new Piscina({
      filename: WORKER_ENTRY,
      minThreads,
      maxThreads,
      idleTimeout: idleTimeoutMs,
      // Applied by piscina through its optional @napi-rs/nice; a no-op where that is not installed.
      niceIncrement,
      // The queue bound is applied here (queueSize check in run()), never by a rejection from piscina.
      maxQueue: Number.MAX_SAFE_INTEGER,
      workerData: { abortChannel: name },
    });
    pool.on('message', (message: unknown) => this.onWorkerMessage(message));
    // A thread that dies between tasks: nothing to report to a command; the pool replaces it.
    pool.on('error', () => {});
    this.pool = pool;
    return pool;
  }

  /** Resolves once the command has finished, failed, timed out or been dropped; never rejects. */
  private run(command: Command): Promise<void> {
    const pool = this.ensurePool();
    const { cmdType, handler } = command;
    if (pool.queueSize >= this.options.maxQueue) {
      this.sink.dropped(cmdType, 'queueFull');
      return Promise.resolve();
    }
    const frame = command.frame;
    const timeoutMs = this.options.taskTimeoutMs;
    const task: WorkerTask = {
      id: this.nextId++,
      cmdType,
      path: handler.path,
      exportName: handler.exportName,
      frame,
      timeoutMs,
    };
    return new Promise<void>((settle) => {
      const t: Task = {
        id: task.id,
        cmdType,
        channel: handler.channel,
        batchesSeen: 0,
        answer: null,
        hard: new AbortController(),
        timer: null,
        timedOut: false,
        settle,
      };
      this.tasks.set(t.id, t);
      pool.run(task, { transferList: [frame], signal: t.hard.signal }).then(
        (answer: WorkerTaskResult) => {
          t.answer = answer;
          if (t.batchesSeen >= answer.batches) this.finish(t);
        },
        (err: unknown) => {
          // Piscina's own failures: the thread was terminated (abort) or died.
          if (!t.timedOut) this.sink.failed(`command:${cmdType}`, err);
          this.finish(t);
        },
      );
    });
  }

  private onTimeout(t: Task): void {
    // Finished in time, only waiting for its last telemetry batches to arrive.
    if (t.answer) return;
    t.timedOut = true;
    const err = new Error(`command '${t.cmdType}' timed out after ${this.options.taskTimeoutMs} ms`);
    err.name = 'TimeoutError';
    this.sink.failed(`command:${t.cmdType}`, err);
    // The worker aborts the handler's signal at the same deadline; a handler that ignores it loses its thread.
    t.timer = setTimeout(() => this.hardAbort(t, err), this.options.abortGraceMs);
    t.timer.unref();
  }

  /** Piscina terminates the thread running `t`; remember it until its 'exit' (see `exiting`). */
  private hardAbort(t: Task, reason: Error): void {
    const pool = this.pool;
    const before: Worker[] = pool ? pool.threads : [];
    t.hard.abort(reason);
    if (!pool) return;
    const after = new Set(pool.threads);
    for (const thread of before) {
      if (after.has(thread)) continue;
      const exited: Promise<void> = new Promise<void>((resolve) => thread.once('exit', () => resolve())).then(() => {
        this.exiting.delete(exited);
      });
      this.exiting.add(exited);
    }
  }

  private finish(t: Task): void {
    if (!this.tasks.delete(t.id)) return;
    if (t.timer) clearTimeout(t.timer);
    const answer = t.answer;
    if (answer) {
      this.deliver(answer.tail);
      if (!t.timedOut) {
        if (answer.error) this.sink.failed(`command:${t.cmdType}`, rebuildError(answer.error));
        else if (answer.result !== undefined) this.sink.sendJson(answer.result, t.channel);
      }
    }
    t.settle();
  }

  private onWorkerMessage(message: unknown): void {
    if (message === null || typeof message !== 'object') return;
    if (TASK_STARTED in message) {
      // The time limit counts from the handler's start, not from the wait in the queue.
      const t = this.tasks.get((message as TaskStartedMessage)[TASK_STARTED]);
      if (t && !t.timer && t.answer === null) {
        t.timer = setTimeout(() => this.onTimeout(t), this.options.taskTimeoutMs);
        t.timer.unref();
      }
      return;
    }
    if (!(TELEMETRY_MESSAGE in message)) return;
    const { id, batch } = message as TelemetryBatchMessage;
    this.deliver(batch);
    const t = this.tasks.get(id);
    if (!t) return;
    t.batchesSeen++;
    if (t.answer && t.batchesSeen >= t.answer.batches) this.finish(t);
  }

  private deliver(batch: Outbound[]): void {
    for (const [json, channel] of batch) this.sink.sendJson(json, channel ? channel : undefined);
  }
}

/** Call `done` as well when `t` settles. */
function chainSettle(t: Task, done: () => void): void {
  const settle = t.settle;
  t.settle = () => {
    settle();
    done();
  };
}

/**
 * Resolves in a later event-loop turn than the current one: libuv runs the close callbacks of the
 * handles closed in a turn at the end of that turn, and an immediate queued from a check phase
 * runs in the next turn's check phase.
 */
function pastClosePhase(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
