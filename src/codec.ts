import type { ByteWriter } from './byte-writer';
import { ValueError } from './errors';
import { ShapeSerializer } from './shape-serializer';

/** Builds the SDK's outbound frames for one application name; the escaped name is computed once. */
export class FrameEncoder {
  private readonly nameJson: string;
  private readonly telemetryHead: string;
  private readonly telemetryHeadBytes: Uint8Array;
  /** Payloads of the shapes this application sends, written as bytes (see shape-serializer.ts). */
  private readonly payloads = new ShapeSerializer();
  /** The tail of a frame with the channel used last (apps mostly send to one or a few). */
  private lastChannel = '';
  private lastChannelTail: Uint8Array = Buffer.from(',"channel":""}}\n');

  constructor(name: string) {
    this.nameJson = JSON.stringify(name);
    this.telemetryHead = `{"data":{"sdkclient":{"name":${this.nameJson}},"payload":`;
    this.telemetryHeadBytes = Buffer.from(this.telemetryHead);
  }

  hello(sdkVersion: string): string {
    return `{"signal":{"sdkclient":{"name":${this.nameJson},"status":"connected","version":${JSON.stringify(sdkVersion)}}}}\n`;
  }

  goodbye(): string {
    return `{"signal":{"sdkclient":{"name":${this.nameJson},"status":"disconnected"}}}\n`;
  }

  /** Throws ValueError when `msg` cannot be serialised; `msg` is already known to be a plain object. */
  telemetry(msg: object, channel: string | undefined): string {
    return this.telemetryJson(stringify(msg, 'msg'), channel);
  }

  /**
   * Appends the telemetry frame of `msg` to `w` as UTF-8 and returns true, or returns false with
   * `w.pos` as it was: then telemetry() builds the frame (and throws where it cannot be serialised).
   */
  telemetryInto(msg: object, channel: string | undefined, w: ByteWriter): boolean {
    const start = w.pos;
    w.bytes(this.telemetryHeadBytes);
    if (!this.payloads.write(msg, w)) {
      w.pos = start;
      return false;
    }
    if (channel === undefined) {
      w.bytes(TELEMETRY_TAIL);
    } else {
      if (channel !== this.lastChannel) {
        this.lastChannel = channel;
        this.lastChannelTail = Buffer.from(`,"channel":${JSON.stringify(channel)}}}\n`);
      }
      w.bytes(this.lastChannelTail);
    }
    return true;
  }

  /** Telemetry whose payload is already JSON text (serialised and checked by stringifyPayload). */
  telemetryJson(payloadJson: string, channel: string | undefined): string {
    if (channel === undefined) return `${this.telemetryHead}${payloadJson}}}\n`;
    return `${this.telemetryHead}${payloadJson},"channel":${JSON.stringify(channel)}}}\n`;
  }

  error(type: string, message: string): string {
    const error = JSON.stringify({ type, msg: message });
    return `{"signal":{"sdkclient":{"name":${this.nameJson},"error":${error}}}}\n`;
  }

  call(cmd: string, args: object): string {
    const call = `{${JSON.stringify(cmd)}:${stringify(args, 'args')}}`;
    return `{"signal":{"sdkclient":{"name":${this.nameJson},"call":${call}}}}\n`;
  }
}

const TELEMETRY_TAIL = Buffer.from('}}\n');

/** send()'s serialisation and checks, for payloads serialised away from the SDK (in a worker thread). */
export function stringifyPayload(msg: object): string {
  return stringify(msg, 'msg');
}

function stringify(value: object, what: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new ValueError(`${what} is not JSON-serialisable: ${(err as Error).message}`, { cause: err });
  }
  // A toJSON() returning undefined or a function makes stringify return undefined: nothing to send.
  if (typeof json !== 'string' || json.charCodeAt(0) !== 0x7b /* { */) {
    throw new ValueError(`${what} does not serialise to a JSON object`);
  }
  return json;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export type Inbound =
  | { kind: 'sdkinit'; version: string }
  | { kind: 'agentstatus'; status: string }
  | { kind: 'connectionstatus'; status: string }
  | { kind: 'command'; cmdType: string; params: unknown }
  /** A well-formed signal this SDK does not know: ignored silently, as newer agents require. */
  | { kind: 'unknown' }
  | { kind: 'invalid'; reason: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes one inbound line (no newline). Never throws. */
export function decodeFrame(line: Buffer): Inbound {
  let text: string;
  try {
    text = utf8.decode(line);
  } catch {
    return { kind: 'invalid', reason: 'invalid UTF-8' };
  }
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return { kind: 'invalid', reason: 'invalid JSON' };
  }
  if (!isObject(frame)) return { kind: 'invalid', reason: 'frame is not a JSON object' };

  if ('signal' in frame) {
    const signal = frame.signal;
    if (!isObject(signal)) return { kind: 'invalid', reason: 'signal is not an object' };
    if ('sdkinit' in signal) {
      const init = signal.sdkinit;
      if (isObject(init) && typeof init.version === 'string' && parseVersion(init.version)) {
        return { kind: 'sdkinit', version: init.version };
      }
      return { kind: 'invalid', reason: 'sdkinit without a MAJ.MIN.PATCH version' };
    }
    if ('agentstatus' in signal) {
      if (typeof signal.agentstatus === 'string') return { kind: 'agentstatus', status: signal.agentstatus };
      return { kind: 'invalid', reason: 'agentstatus is not a string' };
    }
    if ('connectionstatus' in signal) {
      const status = signal.connectionstatus;
      if (typeof status === 'string') return { kind: 'connectionstatus', status };
      return { kind: 'invalid', reason: 'connectionstatus is not a string' };
    }
    return { kind: 'unknown' };
  }
  if ('data' in frame) {
    const data = frame.data;
    if (!isObject(data)) return { kind: 'invalid', reason: 'data is not an object' };
    const keys = Object.keys(data);
    if (keys.length !== 1) return { kind: 'invalid', reason: `data has ${keys.length} keys, expected 1` };
    return { kind: 'command', cmdType: keys[0]!, params: data[keys[0]!] };
  }
  return { kind: 'invalid', reason: 'frame has neither signal nor data' };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** [major, minor, patch] or null when `version` is not MAJ.MIN.PATCH (a suffix like -rc1 is ignored). */
export function parseVersion(version: string): [number, number, number] | null {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export function versionAtLeast(version: string, min: [number, number, number]): boolean {
  const v = parseVersion(version);
  if (!v) return false;
  for (let i = 0; i < 3; i++) {
    if (v[i]! !== min[i]!) return v[i]! > min[i]!;
  }
  return true;
}
