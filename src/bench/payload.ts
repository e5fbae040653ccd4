// The messages the bench sends: the user's sample file (one object, or an array of objects sent in
// turn), or a small sensor reading. Checked here, before any process starts, so that a bad file is
// one clear error (exit 2) and not a failure in the middle of a run.

import * as fs from 'node:fs';
import { SDK_DEFAULTS, UsageError } from './args';

/** The application name every sender uses on the wire. */
export const APP = 'iottly-sdk-bench';

/** The SDK's default maxFrameBytes: the frame limit a sample must fit. */
export const FRAME_LIMIT = SDK_DEFAULTS.maxFrameBytes;

/** A file larger than this is not a sample file (and reading it would take the board's memory). */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;

export const DEFAULT_SAMPLE = Object.freeze({ dev: 'sensor-07', ts: 1764081600123, temp: 21.37, hum: 48.2, batt: 3.91 });

/** The telemetry frame the SDK writes for `payload` (as src/codec.ts builds it, newline included). */
export function frameOf(payload: object, channel: string | null): string {
  const head = `{"data":{"sdkclient":{"name":${JSON.stringify(APP)}},"payload":`;
  const body = JSON.stringify(payload);
  return channel === null ? `${head}${body}}}\n` : `${head}${body},"channel":${JSON.stringify(channel)}}}\n`;
}

export interface Payload {
  /** Where the messages came from: the file as given, or null for the default reading. */
  file: string | null;
  samples: Record<string, unknown>[];
  /** UTF-8 bytes of each sample's telemetry frame, newline included. */
  frameBytes: number[];
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const mib = (n: number): string => (n % (1024 * 1024) === 0 ? `${n / 1024 / 1024} MiB` : `${n} bytes`);

export function loadPayload(file: string | null, channel: string | null): Payload {
  if (file === null) {
    const samples = [{ ...DEFAULT_SAMPLE }];
    return { file: null, samples, frameBytes: samples.map((s) => Buffer.byteLength(frameOf(s, channel))) };
  }
  const where = `--payload ${file}`;
  let text: string;
  try {
    const st = fs.statSync(file);
    if (st.isDirectory()) throw new UsageError(`${where}: is a directory, not a JSON file`);
    if (st.size > MAX_FILE_BYTES) {
      throw new UsageError(`${where}: ${st.size} bytes is too large for a sample file (at most ${mib(MAX_FILE_BYTES)})`);
    }
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new UsageError(`${where}: no such file`);
    if (e.code === 'EACCES' || e.code === 'EPERM') throw new UsageError(`${where}: not readable (${e.code})`);
    throw new UsageError(`${where}: cannot be read: ${e.message}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim().length === 0) throw new UsageError(`${where}: the file is empty; it must hold a JSON message object`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${where}: not JSON (${(err as Error).message})`);
  }
  let samples: Record<string, unknown>[];
  if (Array.isArray(value)) {
    if (value.length === 0) throw new UsageError(`${where}: the array is empty; give at least one message object`);
    value.forEach((v, i) => {
      if (!isPlainObject(v)) {
        throw new UsageError(`${where}: element ${i} of the array is ${kind(v)}, not a message object`);
      }
    });
    samples = value as Record<string, unknown>[];
  } else if (isPlainObject(value)) {
    samples = [value];
  } else {
    throw new UsageError(`${where}: holds ${kind(value)}; it must hold one message object or an array of message objects`);
  }
  const frameBytes = samples.map((s) => Buffer.byteLength(frameOf(s, channel)));
  frameBytes.forEach((bytes, i) => {
    // The limit applies to the line without its newline, as the SDK's maxFrameBytes does.
    if (bytes - 1 > FRAME_LIMIT) {
      const which = samples.length === 1 ? 'the message' : `element ${i}`;
      throw new UsageError(
        `${where}: ${which} makes a telemetry frame of ${bytes - 1} bytes, over the ${mib(FRAME_LIMIT)} frame limit ` +
          `(the SDK's default maxFrameBytes, ${FRAME_LIMIT} bytes)`,
      );
    }
  });
  return { file, samples, frameBytes };
}
