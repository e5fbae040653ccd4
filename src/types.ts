import type { DropReason, TransportKind } from './transport/types';

/** 'started', 'stopped', or an agentstatus value passed through as received (e.g. 'stopping'). */
export type AgentStatus = 'started' | 'stopping' | 'stopped' | (string & {});
export type ConnectionStatus = 'connected' | 'disconnected' | (string & {});

export type AgentStatusCallback = (status: AgentStatus) => unknown;
export type ConnectionStatusCallback = (status: ConnectionStatus) => unknown;
/**
 * A command callback. `P` is the params type the application expects: the SDK does not check it (a
 * command's params are whatever JSON value the agent sent), so it is `unknown` unless you name it,
 * as in `sdk.subscribe<{ value: number }>('set_threshold', ({ value }) => ...)`. Declared as a
 * method so that a callback for any `P` can be stored as a `CommandCallback`.
 */
export type CommandCallback<P = unknown> = { bivarianceHack(params: P): unknown }['bivarianceHack'];

/** What a worker command handler receives besides the command's params. */
export interface WorkerContext {
  /** The command type this handler was subscribed for. */
  readonly cmdType: string;
  /** Aborted when the command times out (reason: a TimeoutError) or the SDK stops (an AbortError). */
  readonly signal: AbortSignal;
  /**
   * Send telemetry from inside the worker, as IottlySDK.send() does (same checks, thrown here);
   * messages are handed to the main thread in batches and reach iottly before the return value.
   */
  send(msg: object, channel?: string | null): void;
}

/** The shape of a function exported by a worker handler module. */
export type WorkerCommandHandler<P = any> = (params: P, context: WorkerContext) => unknown;

/** 'queueFull': too many commands waiting for a worker thread; 'stop': arrived or waiting during stop(). */
export type CommandDropReason = 'queueFull' | 'stop';

export interface CommandDroppedInfo {
  cmdType: string;
  reason: CommandDropReason;
}

export interface DropInfo {
  /** Messages dropped since the previous 'drop' event, by reason. */
  counts: Partial<Record<DropReason, number>>;
  /** All messages dropped since the SDK was created. */
  total: number;
}

export interface ProtocolErrorInfo {
  reason: string;
  /** Length in bytes of the skipped frame. */
  bytes: number;
  /** The start of the frame, for logs (at most 200 bytes, decoded leniently). */
  sample: string;
}

export interface CallbackErrorInfo {
  /** 'command:<type>', 'agentStatus' or 'connectionStatus'. */
  source: string;
  error: unknown;
}

export interface IottlySDKEvents {
  agentStatus: [status: AgentStatus];
  connectionStatus: [status: ConnectionStatus];
  drain: [];
  drop: [info: DropInfo];
  protocolError: [info: ProtocolErrorInfo];
  connectError: [error: Error];
  callbackError: [info: CallbackErrorInfo];
  /** A command for a worker handler was not run. */
  commandDropped: [info: CommandDroppedInfo];
}

export interface SDKStats {
  transport: TransportKind;
  /** Messages accepted by send(). */
  accepted: number;
  /** Messages handed to the kernel on the agent's socket. */
  written: number;
  dropped: { overflow: number; stop: number; total: number };
  /** Messages accepted and neither written nor dropped yet. */
  buffered: number;
  bufferedBytes: number;
  bytesWritten: number;
  framesReceived: number;
  /** Inbound frames skipped as invalid or oversize. */
  framesSkipped: number;
  /** Well-formed signals this SDK does not know, ignored. */
  framesIgnored: number;
  commandsDispatched: number;
  commandsUnhandled: number;
  /** Commands for worker handlers dropped (full queue, or stop()). */
  commandsDropped: number;
  /** callAgent() calls that passed their checks: callsWritten + callsDropped + callsBuffered. */
  callsAccepted: number;
  /** callAgent() frames handed to the kernel (callback-error frames are not counted). */
  callsWritten: number;
  /** callAgent() frames lost: the link dropped before they were written, or over the call bound. */
  callsDropped: number;
  /** callAgent() frames queued or being written. */
  callsBuffered: number;
  reconnects: number;
  connectErrors: number;
  callbackErrors: number;
}
