/**
 * The native addon as JavaScript sees it: the one place that declares its surface and finds the
 * `.node` file. Everything protocol-shaped stays in TypeScript; the addon only moves bytes.
 */
import * as path from 'node:path';
import type { TransportCounters, TransportOptions } from './types';

/**
 * Event codes in the flat list handed to `onEvents`: `[code, a, b, code, a, b, ...]`. Its second
 * argument is the transport's inbound Buffer, reused by every call (undefined when no frames came).
 * The addon's own table (IOTTLY_EVENTS in native/surface.h, exported as `events`) must equal this
 * one: loadBinding() refuses an addon whose table differs.
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

/** A counter the addon reports: every field of TransportCounters, none other. */
export type NativeCounterName = keyof TransportCounters;

/**
 * The counters this package reads from `counters(out)`, by name. Their order is the addon's
 * (`counterFields`, from IOTTLY_COUNTER_FIELDS in native/surface.h); the names must be the same set.
 */
const COUNTER_NAMES: Readonly<Record<NativeCounterName, true>> = {
  written: true,
  bytesWritten: true,
  buffered: true,
  bufferedBytes: true,
  droppedOverflow: true,
  droppedStop: true,
  droppedCalls: true,
  callsWritten: true,
  callsBuffered: true,
  reconnects: true,
  connectErrors: true,
  oversizeFrames: true,
};
export const NATIVE_COUNTER_FIELDS = Object.freeze(Object.keys(COUNTER_NAMES) as NativeCounterName[]);

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
  /** The addon's event codes by name: equal to NativeEvent (checked at load). */
  events: Readonly<Record<string, number>>;
  /** The names of the values `counters(out)` writes, in its order (checked at load). */
  counterFields: readonly string[];
}

const ADDON_FILE = 'iottly_native.node';

/** The interface version this code speaks (kAbiVersion in native/binding.cc). */
export const NATIVE_ABI_VERSION = 4;

const own = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key);

/**
 * Throws, naming every difference, unless the addon's event codes equal NativeEvent and its counter
 * fields are NATIVE_COUNTER_FIELDS (in any order, each once). Two builds of the same interface
 * version can still disagree here when one side was changed without the other.
 */
export function checkNativeSurface(binding: { events?: unknown; counterFields?: unknown }): void {
  const problems: string[] = [];
  const events = binding.events;
  if (typeof events !== 'object' || events === null || Array.isArray(events)) {
    problems.push('no event table (events)');
  } else {
    const table = events as Record<string, unknown>;
    for (const [name, code] of Object.entries(NativeEvent)) {
      if (!own(table, name)) problems.push(`event ${name} (${code}) missing from the addon`);
      else if (table[name] !== code) problems.push(`event ${name} is ${String(table[name])} in the addon, ${code} here`);
    }
    for (const name of Object.keys(table)) {
      if (!own(NativeEvent, name)) problems.push(`event ${name} (${String(table[name])}) unknown here`);
    }
  }
  const fields = binding.counterFields;
  if (!Array.isArray(fields) || fields.some((f) => typeof f !== 'string')) {
    problems.push('no list of counter names (counterFields)');
  } else {
    const seen = new Set<string>();
    for (const name of fields as string[]) {
      if (seen.has(name)) problems.push(`counter ${name} listed twice by the addon`);
      else if (!own(COUNTER_NAMES, name)) problems.push(`counter ${name} unknown here`);
      seen.add(name);
    }
    for (const name of NATIVE_COUNTER_FIELDS) {
      if (!seen.has(name)) problems.push(`counter ${name} missing from the addon`);
    }
  }
  if (problems.length > 0) {
    throw new Error(
      `addon interface differs from this package's: ${problems.join('; ')}. Rebuild it (npm rebuild iottly-sdk); ` +
        'if it still differs, native/surface.h and src/transport/addon.ts disagree',
    );
  }
}

/** Where each counter is in the array `counters(out)` fills, from a list checkNativeSurface() accepted. */
export function nativeCounterIndex(counterFields: readonly string[]): Readonly<Record<NativeCounterName, number>> {
  const index = {} as Record<NativeCounterName, number>;
  for (const name of NATIVE_COUNTER_FIELDS) {
    const at = counterFields.indexOf(name);
    if (at < 0) throw new Error(`the addon reports no counter ${name}`);
    index[name] = at;
  }
  return Object.freeze(index);
}

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
        throw new Error(`addon interface version ${String(binding.abiVersion)}, this package needs ${NATIVE_ABI_VERSION}: rebuild it (npm rebuild iottly-sdk)`);
      }
      // The same version, yet a table changed on one side only: events would go to the wrong handlers.
      checkNativeSurface(binding);
      return binding;
    } catch (err) {
      errors.push(`${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`the iottly native addon does not load (${errors.join('; ')})`);
}
