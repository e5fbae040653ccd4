import { describe } from './describe';
import { rejectUnknownKeys } from './option-names';
import type { AgentStatusCallback, ConnectionStatusCallback } from './types';
import { type ResolvedWorkerOptions, type WorkerPoolOptions, resolveWorkerOptions } from './workers/options';

export const DEFAULT_SOCKET_PATH = '/var/run/iottly.com-agent/sdk/iottly_sdk_socket';

export type TransportChoice = 'auto' | 'js' | 'native';

export interface IottlySDKOptions {
  /** Path of the agent's Unix socket. */
  socketPath?: string;
  /** Messages kept while the agent is unreachable; the oldest is dropped past this. Default 10. */
  maxBufferedMsgs?: number;
  onAgentStatusChanged?: AgentStatusCallback;
  onConnectionStatusChanged?: ConnectionStatusCallback;
  /** 'auto' (default) uses the native addon when it loads, else the JS transport. */
  transport?: TransportChoice;
  /** Delay between connection attempts. Default 200. */
  reconnectIntervalMs?: number;
  /** How long to wait for sdkinit before treating the agent as older than 1.8.0. Default 1000. */
  handshakeTimeoutMs?: number;
  /** Largest inbound frame kept; longer lines are skipped. Default 1 MiB. */
  maxFrameBytes?: number;
  /** Bound on telemetry bytes queued but not yet written while linked. Default 4 MiB. */
  maxQueueBytes?: number;
  /** send() returns false once this many bytes are queued. Default 1 MiB. */
  highWaterMark?: number;
  /** How long stop() may spend writing what is queued. Default 5000. */
  stopTimeoutMs?: number;
  /** After the agent says 'stopping', hold writes this long at most waiting for it to close. Default 10000. */
  stoppingHoldMs?: number;
  /** The thread pool for worker command handlers (started only when one is subscribed). */
  workers?: WorkerPoolOptions;

  // The names the Python documentation uses.
  socket_path?: string;
  max_buffered_msgs?: number;
  on_agent_status_changed?: AgentStatusCallback;
  on_connection_status_changed?: ConnectionStatusCallback;
}

export interface ResolvedOptions {
  socketPath: string;
  maxBufferedMsgs: number;
  onAgentStatusChanged: AgentStatusCallback | null;
  onConnectionStatusChanged: ConnectionStatusCallback | null;
  transport: TransportChoice;
  reconnectIntervalMs: number;
  handshakeTimeoutMs: number;
  maxFrameBytes: number;
  maxQueueBytes: number;
  highWaterMark: number;
  stopTimeoutMs: number;
  stoppingHoldMs: number;
  workers: ResolvedWorkerOptions;
}

const MiB = 1024 * 1024;
/**
 * Upper bounds, so that a value is never truncated where it is used: Node's timers take at most
 * 2^31 - 1 ms (a longer delay fires at once), and the native transport keeps counts and frame sizes
 * in 32 bits on 32-bit ARM. A frame of 1 GiB is already far past what JSON.parse can hold in a string.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_COUNT = 2 ** 32 - 1;
const MAX_FRAME_BYTES = 2 ** 30;
/** The longest Unix socket path connect() takes: sun_path less its terminating NUL. */
const SUN_PATH_MAX = process.platform === 'darwin' || process.platform.endsWith('bsd') ? 103 : 107;

/** Every option name; the Record makes the compiler check it against IottlySDKOptions both ways. */
const OPTION_NAMES = Object.keys({
  socketPath: true,
  maxBufferedMsgs: true,
  onAgentStatusChanged: true,
  onConnectionStatusChanged: true,
  transport: true,
  reconnectIntervalMs: true,
  handshakeTimeoutMs: true,
  maxFrameBytes: true,
  maxQueueBytes: true,
  highWaterMark: true,
  stopTimeoutMs: true,
  stoppingHoldMs: true,
  workers: true,
  socket_path: true,
  max_buffered_msgs: true,
  on_agent_status_changed: true,
  on_connection_status_changed: true,
} satisfies Record<keyof IottlySDKOptions, true>);

export function resolveOptions(input: IottlySDKOptions | string | undefined | null): ResolvedOptions {
  if (typeof input === 'string') input = { socketPath: input };
  if (input === undefined || input === null) input = {};
  if (typeof input !== 'object') throw new TypeError('options must be an object or a socket path string');
  rejectUnknownKeys(input, OPTION_NAMES, 'options');

  const pick = <T>(camel: keyof IottlySDKOptions, snake: keyof IottlySDKOptions | null): T | undefined => {
    const a = input![camel];
    const b = snake ? input![snake] : undefined;
    if (a !== undefined && b !== undefined && a !== b) {
      throw new TypeError(`options.${camel} and options.${snake} are aliases; give only one`);
    }
    return (a ?? b) as T | undefined;
  };

  // Error messages name the option the way the caller spelt it.
  const given = (camel: keyof IottlySDKOptions, snake: keyof IottlySDKOptions): string =>
    input![camel] === undefined && input![snake] !== undefined ? snake : camel;

  const socketPath = pick<string>('socketPath', 'socket_path') ?? DEFAULT_SOCKET_PATH;
  if (typeof socketPath !== 'string' || socketPath.length === 0) {
    throw new TypeError(`options.${given('socketPath', 'socket_path')} must be a non-empty string`);
  }
  // connect() would fail with ENAMETOOLONG on every attempt, forever: say so now.
  const pathBytes = Buffer.byteLength(socketPath);
  if (pathBytes > SUN_PATH_MAX) {
    throw new RangeError(
      `options.${given('socketPath', 'socket_path')} is ${pathBytes} bytes long; a Unix socket path may have at most ${SUN_PATH_MAX} here (sun_path)`,
    );
  }
  const transport = input.transport ?? 'auto';
  if (transport !== 'auto' && transport !== 'js' && transport !== 'native') {
    throw new TypeError(`options.transport must be 'auto', 'js' or 'native', got ${describe(transport)}`);
  }
  const resolved: ResolvedOptions = {
    socketPath,
    maxBufferedMsgs: integer(given('maxBufferedMsgs', 'max_buffered_msgs'), pick('maxBufferedMsgs', 'max_buffered_msgs'), 10, 0, MAX_COUNT),
    onAgentStatusChanged: callback(
      given('onAgentStatusChanged', 'on_agent_status_changed'),
      pick('onAgentStatusChanged', 'on_agent_status_changed'),
    ),
    onConnectionStatusChanged: callback(
      given('onConnectionStatusChanged', 'on_connection_status_changed'),
      pick('onConnectionStatusChanged', 'on_connection_status_changed'),
    ),
    transport,
    reconnectIntervalMs: integer('reconnectIntervalMs', input.reconnectIntervalMs, 200, 1, MAX_TIMER_MS),
    handshakeTimeoutMs: integer('handshakeTimeoutMs', input.handshakeTimeoutMs, 1000, 0, MAX_TIMER_MS),
    maxFrameBytes: integer('maxFrameBytes', input.maxFrameBytes, MiB, 16, MAX_FRAME_BYTES),
    maxQueueBytes: integer('maxQueueBytes', input.maxQueueBytes, 4 * MiB, 1024, Number.MAX_SAFE_INTEGER),
    highWaterMark: integer('highWaterMark', input.highWaterMark, MiB, 1, Number.MAX_SAFE_INTEGER),
    stopTimeoutMs: integer('stopTimeoutMs', input.stopTimeoutMs, 5000, 0, MAX_TIMER_MS),
    stoppingHoldMs: integer('stoppingHoldMs', input.stoppingHoldMs, 10000, 0, MAX_TIMER_MS),
    workers: resolveWorkerOptions(input.workers),
  };
  if (input.maxQueueBytes === undefined && resolved.highWaterMark > resolved.maxQueueBytes) {
    resolved.maxQueueBytes = resolved.highWaterMark;
  }
  if (resolved.highWaterMark > resolved.maxQueueBytes) {
    throw new RangeError('options.highWaterMark must not exceed options.maxQueueBytes');
  }
  return resolved;
}

function integer(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw new TypeError(`options.${name} must be a number, got ${describe(value)}`);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new RangeError(`options.${name} must be an integer ${range}, got ${value}`);
  }
  return value;
}

function callback<T>(name: string, value: unknown): T | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'function') throw new TypeError(`options.${name} must be a function, got ${describe(value)}`);
  return value as T;
}
