// What the bench's parent and its sender children say to each other over the fork() IPC channel.

export type SenderKind = 'sdk-js' | 'sdk-native' | 'naive' | 'stringify';

export interface SenderSpec {
  kind: SenderKind;
  /** The agent's socket (the simulator's or the real one); unused by 'stringify'. */
  socketPath: string;
  channel: string | null;
  samples: Record<string, unknown>[];
  rates: number[];
  seconds: number;
  /** Messages in the burst; null: no burst. */
  burst: number | null;
  /** Messages sent (and waited for) before anything is measured. */
  warmup: number;
  maxQueueBytes: number | null;
  /** true when the agent's reads are counted (the simulator); a real agent's are not. */
  counted: boolean;
  /** Deadlines are multiplied by this (IOTTLY_TEST_SLOWDOWN, for emulated runs). */
  slowdown: number;
}

/** One paced window. CPU is the whole sender process (a native transport's I/O thread included). */
export interface PacedResult {
  rate: number;
  seconds: number;
  sent: number;
  /** Read by the simulator; with a real agent: messages the sender wrote to the socket. */
  delivered: number;
  dropped: number;
  cpuUsPerMsg: number;
  cpuPctOfCore: number;
  /** How late a timer ran, ms: perf_hooks.monitorEventLoopDelay less its resolution. */
  loopDelayP50Ms: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  rssPeakMB: number;
}

export interface BurstResult {
  count: number;
  /** The synchronous loop of send() calls. */
  sendLoopMs: number;
  /** From the first send() until the sender's queue was empty (all written to the socket). */
  drainedMs: number;
  /** From the first send() until the simulator read the last message; null with a real agent. */
  deliveredMs: number | null;
  /** delivered / deliveredMs (with a real agent: written / drainedMs). */
  deliveredPerSec: number;
  delivered: number;
  dropped: number;
  cpuUsPerMsg: number;
  rssPeakMB: number;
}

export interface CeilingResult {
  /** Telemetry frames built with JSON.stringify per second of one loop, no I/O. */
  perSec: number;
  nsPerMsg: number;
  cpuUsPerMsg: number;
  messages: number;
}

export interface SenderResult {
  kind: SenderKind;
  pid: number;
  /** The transport the SDK reported (checks that 'native' really is native). */
  transport: string | null;
  paced: PacedResult[];
  burst: BurstResult | null;
  ceiling: CeilingResult | null;
}

export type ChildMessage =
  | { type: 'progress'; line: string }
  /** Count the agent's reads from now on. */
  | { type: 'mark' }
  /** Reply once `count` messages have been read since the mark (or they stopped coming). */
  | { type: 'await'; count: number }
  | { type: 'result'; result: SenderResult }
  | { type: 'failed'; message: string };

export type ParentMessage =
  | { type: 'spec'; spec: SenderSpec }
  | { type: 'marked' }
  /** `at`: process.hrtime in ns when the last of them was read (the clock is the system's monotonic one). */
  | { type: 'delivered'; delivered: number; at: number };
