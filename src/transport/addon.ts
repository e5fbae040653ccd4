/**
 * The native addon as JavaScript sees it: the one place that declares its surface and finds the
 * `.node` file. Everything protocol-shaped stays in TypeScript; the addon only moves bytes.
 */
import * as path from 'node:path';
import type { TransportOptions } from './types';

/**
 * Event codes in the flat list handed to `onEvents`: `[code, a, b, code, a, b, ...]`. Its second
 * argument is the transport's inbound Buffer, reused by every call (undefined when no frames came).
 */
export const NativeEvent = {
  /** Connected; the hello is queued first. */
  link: 1,
  /** a = errno (0 for EOF), b = syscall. */
  unlink: 2,
  /** a = errno, b = syscall. */
  connectError: 3,
  /** a = offset in the inbound Buffer of lines back to back, b = Uint32Array of their lengths. */
  frames: 4,
  /** a = length of each skipped line, b = how many consecutive lines of that length were skipped. */
  oversize: 5,
  /** a = telemetry frames dropped (reason 'overflow') when the link was lost. */
  drop: 6,
  drain: 7,
  /** The I/O thread has ended; a = telemetry frames dropped (reason 'stop'). Call join(). Always last in its list. */
  stopped: 8,
  /** a = call frames dropped because the link was lost before they were written (reason 'calls'). */
  callsDropped: 9,
} as const;

/** Order of the values written by `counters(out)`. */
export const NATIVE_COUNTER_FIELDS = [
  'written',
  'bytesWritten',
  'buffered',
  'bufferedBytes',
  'droppedOverflow',
  'droppedStop',
  'droppedCalls',
  'callsWritten',
  'reconnects',
  'connectErrors',
  'oversizeFrames',
  'callsBuffered',
] as const;

export interface NativeTransportHandle {
  /** Starts the I/O thread; `hello` opens every connection. */
  start(hello: string): void;
  /**
   * Queues complete frames (each ending in '\n'), `byteLength` being their UTF-8 size. Returns how
   * many queued frames the policy dropped (reason 'overflow'); writes [queued count, queued bytes,
   * frames of this push refused because stop() is in progress (reason 'stop', already counted)] into
   * the status array. `wantDrain` arms a 'drain' event for when the queue falls under the high-water mark.
   */
  push(frames: string | Buffer, byteLength: number, wantDrain: boolean): number;
  /**
   * Queues a call frame (or with `report`, a report frame) ahead of telemetry. False when not linked,
   * stopping, or over the call bound (maxQueueBytes of call and report frames not yet written); a
   * call, not a report, is then counted as dropped.
   */
  call(frame: string, report: boolean): boolean;
  hold(held: boolean): void;
  /** -1: the thread flushes, says goodbye and posts 'stopped'. Otherwise not running: frames dropped. */
  stop(goodbye: string, timeoutMs: number): number;
  /** Joins the ended I/O thread and releases the thread-safe function. */
  join(): void;
  counters(out: Float64Array): void;
  /**
   * The frames (and oversize lines) delivered so far are handled: the I/O thread may read again.
   * Reading pauses once maxFrameBytes + 256 KiB of them are posted and not yet consumed.
   */
  consumed(): void;
  ref(): void;
  unref(): void;
}

export interface NativeBinding {
  Transport: new (
    options: TransportOptions,
    /** At least 3 elements: see push(). */
    status: Float64Array,
    onEvents: (events: unknown[], inbound: Buffer | undefined) => void,
  ) => NativeTransportHandle;
  abiVersion: number;
}

const ADDON_FILE = 'iottly_native.node';

/** The interface version this code speaks (kAbiVersion in native/binding.cc). */
export const NATIVE_ABI_VERSION = 3;

/** Where the addon may be, in order: an explicit path (sanitiser builds), the local build, a prebuild. */
export function addonCandidates(): string[] {
  const root = path.join(__dirname, '..', '..');
  const list: string[] = [];
  const explicit = process.env.IOTTLY_SDK_NATIVE_PATH;
  if (explicit) list.push(path.resolve(explicit));
  list.push(path.join(root, 'build', 'Release', ADDON_FILE));
  // prebuildify's file names (scripts/prebuild.js). 32-bit ARM carries its ARM version: an ARMv7
  // build would trap on an ARMv6 board rather than fail to load.
  const armv = process.arch === 'arm' ? `.armv${(process.config.variables as Record<string, unknown>).arm_version}` : '';
  list.push(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, `node.napi${armv}.glibc.node`));
  return list;
}

/** Loads the addon; throws (with every path tried) when none loads. */
export function loadBinding(): NativeBinding {
  const errors: string[] = [];
  const candidates = addonCandidates();
  // An explicit path is a demand, not a hint: never fall through to another build silently.
  const tries = process.env.IOTTLY_SDK_NATIVE_PATH ? candidates.slice(0, 1) : candidates;
  for (const file of tries) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const binding = require(file) as NativeBinding;
      if (typeof binding.Transport !== 'function') throw new Error('not the iottly addon');
      // A build left over from another version of this package: loading it would garble events.
      if (binding.abiVersion !== NATIVE_ABI_VERSION) {
        throw new Error(`addon interface version ${String(binding.abiVersion)}, this package needs ${NATIVE_ABI_VERSION}: rebuild it (npm run build:native)`);
      }
      return binding;
    } catch (err) {
      errors.push(`${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`the iottly native addon does not load (${errors.join('; ')})`);
}
