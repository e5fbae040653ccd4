// The simulator's telemetry fast path. When nothing needs the parsed frame (keepFrames off, no
// telemetry/frame listeners, no log), a byte-level validator recognises well-formed telemetry about
// three times faster than JSON.parse. It is conservative: it answers true only for a frame JSON.parse
// would accept and the full path would count as telemetry; on any doubt (other top-level keys,
// escaped or repeated keys, deep nesting) it answers false and the frame takes the full path. Each
// helper takes a position and returns the position after what it consumed, or -1. Only Buffer is
// used: the simulator checks the SDK's codec, so it shares no code with it.

function skipWs(b: Buffer, p: number, end: number): number {
  while (p < end) {
    const c = b[p] as number;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) break;
    p++;
  }
  return p;
}

function scanString(b: Buffer, p: number, end: number): number {
  p++; // opening quote
  while (p < end) {
    const c = b[p++] as number;
    if (c === 0x22) return p;
    if (c === 0x5c) {
      if (p >= end) return -1;
      const e = b[p++] as number;
      if (e === 0x75) {
        if (p + 4 > end) return -1;
        for (let k = 0; k < 4; k++) {
          const h = b[p++] as number;
          const lower = h | 0x20; // folds A-F to a-f; only letters may be folded, or 0x10-0x19 pass as 0-9
          if (!((h >= 0x30 && h <= 0x39) || (lower >= 0x61 && lower <= 0x66))) return -1;
        }
      } else if (e !== 0x22 && e !== 0x5c && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) {
        return -1;
      }
    } else if (c < 0x20) {
      return -1; // raw control characters are not allowed in JSON strings; bytes >= 0x80 are checked UTF-8
    }
  }
  return -1;
}

function skipDigits(b: Buffer, p: number, end: number): number {
  while (p < end) {
    const c = b[p] as number;
    if (c < 0x30 || c > 0x39) break;
    p++;
  }
  return p;
}

function scanNumber(b: Buffer, p: number, end: number): number {
  if (b[p] === 0x2d) p++;
  if (p >= end) return -1;
  const c = b[p] as number;
  if (c === 0x30) p++;
  else if (c >= 0x31 && c <= 0x39) p = skipDigits(b, p + 1, end);
  else return -1;
  if (p < end && b[p] === 0x2e) {
    const s = p + 1;
    p = skipDigits(b, s, end);
    if (p === s) return -1;
  }
  if (p < end && ((b[p] as number) | 0x20) === 0x65) {
    p++;
    if (p < end && (b[p] === 0x2b || b[p] === 0x2d)) p++;
    const s = p;
    p = skipDigits(b, s, end);
    if (p === s) return -1;
  }
  return p;
}

/** Deeper nesting than this is left to JSON.parse. */
export const MAX_SCAN_DEPTH = 64;

/** One JSON value starting exactly at b[p] (no leading whitespace): the position after it, or -1. */
export function scanValue(b: Buffer, p: number, end: number, depth: number): number {
  if (p >= end) return -1;
  switch (b[p]) {
    case 0x22:
      return scanString(b, p, end);
    case 0x7b:
      return scanObject(b, p, end, depth);
    case 0x5b:
      return scanArray(b, p, end, depth);
    case 0x74: // true
      return p + 4 <= end && b[p + 1] === 0x72 && b[p + 2] === 0x75 && b[p + 3] === 0x65 ? p + 4 : -1;
    case 0x6e: // null
      return p + 4 <= end && b[p + 1] === 0x75 && b[p + 2] === 0x6c && b[p + 3] === 0x6c ? p + 4 : -1;
    case 0x66: // false
      return p + 5 <= end && b[p + 1] === 0x61 && b[p + 2] === 0x6c && b[p + 3] === 0x73 && b[p + 4] === 0x65
        ? p + 5
        : -1;
    default:
      return scanNumber(b, p, end);
  }
}

function scanObject(b: Buffer, p: number, end: number, depth: number): number {
  if (depth > MAX_SCAN_DEPTH) return -1;
  p = skipWs(b, p + 1, end);
  if (p < end && b[p] === 0x7d) return p + 1;
  for (;;) {
    if (p >= end || b[p] !== 0x22) return -1;
    p = scanString(b, p, end);
    if (p < 0) return -1;
    p = skipWs(b, p, end);
    if (p >= end || b[p] !== 0x3a) return -1;
    p = scanValue(b, skipWs(b, p + 1, end), end, depth + 1);
    if (p < 0) return -1;
    p = skipWs(b, p, end);
    if (p >= end) return -1;
    const c = b[p++];
    if (c === 0x7d) return p;
    if (c !== 0x2c) return -1;
    p = skipWs(b, p, end);
  }
}

function scanArray(b: Buffer, p: number, end: number, depth: number): number {
  if (depth > MAX_SCAN_DEPTH) return -1;
  p = skipWs(b, p + 1, end);
  if (p < end && b[p] === 0x5d) return p + 1;
  for (;;) {
    p = scanValue(b, p, end, depth + 1);
    if (p < 0) return -1;
    p = skipWs(b, p, end);
    if (p >= end) return -1;
    const c = b[p++];
    if (c === 0x5d) return p;
    if (c !== 0x2c) return -1;
    p = skipWs(b, p, end);
  }
}

const KEY_DATA = Buffer.from('data');
const KEY_SDKCLIENT = Buffer.from('sdkclient');
const KEY_NAME = Buffer.from('name');
const KEY_PAYLOAD = Buffer.from('payload');
const KEY_CHANNEL = Buffer.from('channel');

/** Raw key bytes b[s, e) equal `key` (a key written with escapes never matches). */
function keyIs(b: Buffer, s: number, e: number, key: Buffer): boolean {
  const n = key.length;
  if (e - s !== n) return false;
  for (let k = 0; k < n; k++) if (b[s + k] !== key[k]) return false;
  return true;
}

/** An escaped key might decode to a known one: leave such frames to JSON.parse. */
function hasEscape(b: Buffer, s: number, e: number): boolean {
  for (let k = s; k < e; k++) if (b[k] === 0x5c) return true;
  return false;
}

function scanSdkclient(b: Buffer, p: number, end: number): number {
  p = skipWs(b, p + 1, end);
  let name = false;
  for (;;) {
    if (p >= end || b[p] !== 0x22) return -1;
    const ks = p + 1;
    p = scanString(b, p, end);
    if (p < 0) return -1;
    const ke = p - 1;
    p = skipWs(b, p, end);
    if (p >= end || b[p] !== 0x3a) return -1;
    p = skipWs(b, p + 1, end);
    if (p >= end) return -1;
    if (keyIs(b, ks, ke, KEY_NAME)) {
      if (name || b[p] !== 0x22) return -1;
      p = scanString(b, p, end);
      name = true;
    } else {
      if (hasEscape(b, ks, ke)) return -1;
      p = scanValue(b, p, end, 3);
    }
    if (p < 0) return -1;
    p = skipWs(b, p, end);
    if (p >= end) return -1;
    const c = b[p++];
    if (c === 0x7d) return name ? p : -1;
    if (c !== 0x2c) return -1;
    p = skipWs(b, p, end);
  }
}

/** b[start, end) is certainly a telemetry frame the full path would accept. */
export function isCertainTelemetry(b: Buffer, start: number, end: number): boolean {
  let p = skipWs(b, start, end);
  if (p >= end || b[p] !== 0x7b) return false;
  p = skipWs(b, p + 1, end);
  if (p >= end || b[p] !== 0x22) return false;
  const ks = p + 1;
  p = scanString(b, p, end);
  if (p < 0 || !keyIs(b, ks, p - 1, KEY_DATA)) return false;
  p = skipWs(b, p, end);
  if (p >= end || b[p] !== 0x3a) return false;
  p = skipWs(b, p + 1, end);
  if (p >= end || b[p] !== 0x7b) return false;
  p = skipWs(b, p + 1, end);
  let sdkclient = false;
  let payload = false;
  let channel = false;
  for (;;) {
    if (p >= end || b[p] !== 0x22) return false;
    const s = p + 1;
    p = scanString(b, p, end);
    if (p < 0) return false;
    const e = p - 1;
    p = skipWs(b, p, end);
    if (p >= end || b[p] !== 0x3a) return false;
    p = skipWs(b, p + 1, end);
    if (p >= end) return false;
    if (keyIs(b, s, e, KEY_SDKCLIENT)) {
      if (sdkclient || b[p] !== 0x7b) return false;
      p = scanSdkclient(b, p, end);
      sdkclient = true;
    } else if (keyIs(b, s, e, KEY_PAYLOAD)) {
      if (payload || b[p] !== 0x7b) return false;
      p = scanObject(b, p, end, 2);
      payload = true;
    } else if (keyIs(b, s, e, KEY_CHANNEL)) {
      if (channel || b[p] !== 0x22) return false;
      p = scanString(b, p, end);
      channel = true;
    } else {
      if (hasEscape(b, s, e)) return false;
      p = scanValue(b, p, end, 2);
    }
    if (p < 0) return false;
    p = skipWs(b, p, end);
    if (p >= end) return false;
    const c = b[p++];
    if (c === 0x7d) break;
    if (c !== 0x2c) return false;
    p = skipWs(b, p, end);
  }
  if (!sdkclient || !payload) return false;
  // "data" must be the only top-level member
  p = skipWs(b, p, end);
  if (p >= end || b[p] !== 0x7d) return false;
  return skipWs(b, p + 1, end) === end;
}
