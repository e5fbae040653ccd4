// A JSON serialiser specialised for the shapes of the objects an application actually sends, writing
// UTF-8 bytes straight into a ByteWriter.
//
// ShapeSerializer.write(value, w) appends exactly the UTF-8 bytes of JSON.stringify(value) to w and
// returns true, or returns false with w.pos where it was, which means "not served: call
// JSON.stringify yourself". It learns the key lists (in Object.keys order) and the value types of
// the objects it is shown, compiles one straight-line function per frequent shape (new Function),
// and serves later objects of that shape from it.
//
// Why bytes: an earlier version (commit 2cf9654) returned strings built by concatenation. V8 keeps
// those as ropes of ~20 pieces, and flattening and encoding them cost most of what the serializer
// saved, while the pieces raised memory. Here the served path makes no strings at all: constant
// pieces (keys, punctuation) are copied from precomputed Uint8Arrays, numbers are written digit by
// digit, and ASCII strings byte by byte. Only what has no proven shortcut makes a string first
// (non-ASCII or escaped strings, numbers that need the shortest round-trip digits, and values the
// compiled code did not expect, which the generic serialiser below writes as JSON text).
//
// The rules that keep the output byte-identical:
// - Before committing to an object, only operations that run no user code are used (util.types
//   checks, Object.keys and Object.getPrototypeOf on non-proxies, `'toJSON' in value` once no
//   proxy is on the prototype chain). A miss returns false having observed nothing, so the
//   caller's JSON.stringify sees the object untouched.
// - Once committed (the key list matched a compiled shape), every property is read exactly once, in
//   JSON.stringify's order, depth first. A value the compiled code does not expect (another type, a
//   nested object of another shape, a toJSON, a boxed primitive, a proxy, a hole) is handed, with the
//   value already read, to a generic serialiser written from the ECMAScript algorithm
//   (SerializeJSONProperty), which finishes the value, or the rest of the object, without reading
//   anything twice. Its text is JSON.stringify's, so always well-formed UTF-16 (lone surrogates are
//   escaped), and is written with ByteWriter.string as exact UTF-8.
// - The generic serialiser gives up only where JSON.stringify throws (BigInt, cycles, exceptions
//   from getters, toJSON or proxy traps) or where nesting is deeper than MAX_DEPTH. Giving up
//   restores w.pos. If user code (a getter, a trap) ran before giving up, the caller's
//   JSON.stringify runs it again.
// - Numbers use a shortcut only where its digits provably equal Number.prototype.toString's
//   (see putShortNumber); strings are copied byte by byte between quotes only when they are ASCII
//   and nothing in them needs escaping.
import { types } from 'node:util';
import type { ByteWriter } from './byte-writer';

const { isProxy, isBoxedPrimitive, isNumberObject, isStringObject, isBooleanObject, isBigIntObject } = types;
const isArray = Array.isArray;
const objectKeys = Object.keys;
const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const getPrototypeOf = Object.getPrototypeOf;
const ObjectPrototype = Object.prototype;
const reflectApply = Reflect.apply;
const booleanValueOf = Boolean.prototype.valueOf;
const jsonStringify = JSON.stringify;
const mathFloor = Math.floor;
const mathRound = Math.round;
const StringCtor = String;

/** Internal result of the generic serialisers: JSON text, undefined (the member is omitted), or BAIL. */
type Out = string | undefined | null;
/** "Cannot produce JSON.stringify's output" (it would throw, or we chose not to follow). */
const BAIL = null;
/** Nesting beyond this (counted from where the generic serialiser took over) is not followed. */
const MAX_DEPTH = 200;
/**
 * Longer arrays are left to JSON.stringify: built from many small pieces, an array of 2^32-1 holes
 * would exhaust memory long before reaching the maximum string length, where JSON.stringify throws.
 */
const MAX_ARRAY_LENGTH = 65536;

// Status of the compiled and byte-level functions. A function returning OMITTED has written nothing.
const WRITTEN = 1;
const OMITTED = 0;
const GAVE_UP = -1;

// ---------------------------------------------------------------------------------------------
// Leaves: numbers and strings, written as bytes into room the caller has made.

const ascii = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

/**
 * Bytes to make room for before writing any number: the longest Number.prototype.toString of a
 * finite double is 24 characters (sign, 17 significant digits, '.', 'e+308'), and the shortcuts
 * write at most 17 (sign and 16 digits; sign, 9 digits, '.', 6 digits).
 */
const NUMBER_ROOM = 24;
const TWO_53 = 9007199254740992;

// The digit writers take int32 arguments (callers pass `x | 0` of integers known to fit): then
// TurboFan compiles (n / 10) | 0 to an integer multiply and shift, where a double operand would
// cost a floating-point division per digit.

/** Writes the decimal digits of an int32 0 ≤ n at p; returns the end. */
function putDigits(b: Uint8Array, p: number, n: number): number {
  const end =
    p +
    (n < 1e5
      ? n < 100
        ? n < 10 ? 1 : 2
        : n < 1e3 ? 3 : n < 1e4 ? 4 : 5
      : n < 1e7
        ? n < 1e6 ? 6 : 7
        : n < 1e8 ? 8 : n < 1e9 ? 9 : 10);
  let q = end;
  do {
    const d = (n / 10) | 0;
    b[--q] = 48 + n - d * 10;
    n = d;
  } while (n !== 0);
  return end;
}

/** Writes exactly `width` digits of an int32 0 ≤ n < 10^width (zero-padded) at p; returns the end. */
function putPadded(b: Uint8Array, p: number, n: number, width: number): number {
  const end = p + width;
  for (let q = end; q > p; ) {
    const d = (n / 10) | 0;
    b[--q] = 48 + n - d * 10;
    n = d;
  }
  return end;
}

const INT32_MIN = ascii('-2147483648');

/** Writes an int32 (what String(n) gives; -0 is an int32 here and gives "0"); returns the end. */
export function putInt32(b: Uint8Array, p: number, n: number): number {
  if (n < 0) {
    // -n must stay an int32 (see above).
    if (n === -2147483648) {
      b.set(INT32_MIN, p);
      return p + INT32_MIN.length;
    }
    b[p++] = 0x2d; // '-'
    n = -n;
  }
  return putDigits(b, p, n);
}

/**
 * Writes Number.prototype.toString(v) (what JSON.stringify writes) for a finite v that is not an
 * int32 (those go to putInt32), where a shortcut provably gives the same digits, and returns the end; returns -1 (having
 * written nothing that matters) where only String(v) will do. Shortcuts:
 * - other integers below 2^53: every such integer is a double, so toString writes its exact
 *   digits; they are written as two int32 halves (hi = floor(a / 1e9), then lo on 9 digits).
 * - below 1e9 with at most 6 decimals: if n / 1e6 === |v| for n = round(|v| * 1e6), the decimal
 *   D = n·10^-6 rounds to v (division of exact integers is correctly rounded). Two different
 *   decimals with at most 6 fraction digits are ≥ 1e-6 apart, more than 8 ulps below 1e9, so no
 *   other such decimal rounds to v: D without its trailing zeros is the shortest decimal that
 *   round-trips, which is what toString writes; |v| ≥ 1e-6 keeps toString out of exponent
 *   notation. If the test fails, no decimal of ≤ 6 fraction digits rounds to v.
 */
export function putShortNumber(b: Uint8Array, p: number, v: number): number {
  let a = v;
  if (a < 0) a = -a;
  if (mathFloor(a) === a) {
    if (a >= TWO_53) return -1;
    if (v < 0) b[p++] = 0x2d;
    // a ≥ 2^31 here (int32s are written by putInt32), so hi ≥ 2.
    let hi = mathFloor(a / 1e9);
    // Exact: hi·1e9 is an integer below 2^54 divisible by 2^9, and the difference is a small integer.
    let lo = a - hi * 1e9;
    if (lo < 0) {
      hi -= 1;
      lo += 1e9;
    } else if (lo >= 1e9) {
      hi += 1;
      lo -= 1e9;
    }
    return putPadded(b, putDigits(b, p, hi | 0), lo | 0, 9);
  }
  if (a < 1e9) {
    const n = mathRound(a * 1e6);
    if (n / 1e6 === a) {
      const ip = mathFloor(a);
      // 0 < f < 1e6: v is not an integer, and ip is exact (ulp(1e9) < 1e-6).
      let f = (n - ip * 1e6) | 0;
      let d = 6;
      while (d > 1 && f % 10 === 0) {
        f = (f / 10) | 0;
        d--;
      }
      if (v < 0) b[p++] = 0x2d;
      p = putDigits(b, p, ip | 0);
      b[p++] = 0x2e; // '.'
      return putPadded(b, p, f, d);
    }
  }
  return -1;
}

/**
 * Writes JSON.stringify(s) at p for a string that is ASCII with nothing to escape, and returns the
 * end; returns -1 for any other string (the caller then uses quoteInto). Room for s.length + 2
 * bytes must have been made.
 */
export function putAsciiString(b: Uint8Array, p: number, s: string): number {
  const n = s.length;
  b[p] = 0x22;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    // Control characters, '"', '\', and anything beyond ASCII (0x7f is written as is).
    if (c < 0x20 || c > 0x7f || c === 0x22 || c === 0x5c) return -1;
    b[p + 1 + i] = c;
  }
  b[p + 1 + n] = 0x22;
  return p + n + 2;
}

const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;
const QUOTE = new Uint8Array([0x22]);

/**
 * Writes JSON.stringify(s) for any string. Without anything to escape (and so without surrogates,
 * which only need escaping when lone, but are rare enough not to tell apart), the string itself is
 * encoded between quotes; otherwise JSON.stringify quotes it (well-formed: it escapes lone
 * surrogates).
 */
function quoteInto(w: ByteWriter, s: string): void {
  if (NEEDS_ESCAPE.test(s)) {
    w.string(jsonStringify(s));
    return;
  }
  w.bytes(QUOTE);
  w.string(s);
  w.bytes(QUOTE);
}

/** JSON.stringify(s) for a string, as text: copied between quotes unless a character needs escaping. */
function quoteString(s: string): string {
  const n = s.length;
  if (n > 64) return NEEDS_ESCAPE.test(s) ? jsonStringify(s) : '"' + s + '"';
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return jsonStringify(s);
  }
  return '"' + s + '"';
}

// ---------------------------------------------------------------------------------------------
// The generic serialiser: ECMAScript's SerializeJSONProperty / SerializeJSONObject /
// SerializeJSONArray (no replacer, no gap), taking over with values already read. It returns text:
// it runs only for what the compiled code did not expect, where speed matters less than exactness.

function onStack(stack: object[], o: object): boolean {
  for (let i = 0; i < stack.length; i++) if (stack[i] === o) return true;
  return false;
}

/** Serialises a value already read from its holder under `key` (array indexes as numbers). */
function gProp(v: unknown, key: string | number, stack: object[]): Out {
  const t = typeof v;
  if ((t === 'object' && v !== null) || t === 'function' || t === 'bigint') {
    return gAfterToJSON(v, (v as { toJSON?: unknown }).toJSON, key, stack);
  }
  return gPrimitive(v);
}

function gPrimitive(v: unknown): Out {
  switch (typeof v) {
    case 'string':
      return quoteString(v);
    case 'number':
      return v - v === 0 ? '' + v : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      return 'null'; // only null gets here
    case 'bigint':
      return BAIL; // JSON.stringify throws a TypeError
    default:
      return undefined; // undefined, symbols, functions: omitted (null in arrays)
  }
}

/** The rest of SerializeJSONProperty once toJSON (`t`) has been read from `v`. */
function gAfterToJSON(v: unknown, t: unknown, key: string | number, stack: object[]): Out {
  if (typeof t === 'function') v = reflectApply(t, v, [typeof key === 'number' ? '' + key : key]);
  if (typeof v !== 'object' || v === null) return gPrimitive(v);
  if (isBoxedPrimitive(v)) {
    if (isNumberObject(v)) return gPrimitive(+(v as unknown as number)); // ToNumber
    if (isStringObject(v)) return quoteString(StringCtor(v)); // ToString
    if (isBooleanObject(v)) return reflectApply(booleanValueOf, v, []) ? 'true' : 'false';
    if (isBigIntObject(v)) return BAIL;
    // Symbol objects are serialised as objects.
  }
  if (isArray(v)) return gArray(v, stack);
  return gObject(v, stack);
}

function toLength(x: unknown): number {
  const n = +(x as number);
  if (!(n > 0)) return 0;
  if (n >= TWO_53 - 1) return TWO_53 - 1;
  return mathFloor(n);
}

function gArray(a: unknown[], stack: object[]): Out {
  if (onStack(stack, a) || stack.length >= MAX_DEPTH) return BAIL;
  return gArrayFrom(a, a.length, stack);
}

/** SerializeJSONArray once the length has been read (as-is, not yet ToLength'd); `a` not yet on the stack. */
function gArrayFrom(a: unknown[], rawLength: unknown, stack: object[]): Out {
  const len = typeof rawLength === 'number' && rawLength >>> 0 === rawLength ? rawLength : toLength(rawLength);
  if (len > MAX_ARRAY_LENGTH) return BAIL;
  stack.push(a);
  let out = '[';
  for (let i = 0; i < len; i++) {
    const r = gProp(a[i], i, stack);
    if (r === BAIL) return BAIL;
    out += (i === 0 ? '' : ',') + (r === undefined ? 'null' : r);
  }
  stack.pop();
  return out + ']';
}

function gObject(o: object, stack: object[]): Out {
  if (onStack(stack, o) || stack.length >= MAX_DEPTH) return BAIL;
  stack.push(o);
  const r = gObjectFrom(o, objectKeys(o), stack);
  stack.pop();
  return r;
}

/** Serialises the members of `o` (its key list already taken). */
function gObjectFrom(o: object, keys: string[], stack: object[]): Out {
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const r = gProp((o as Record<string, unknown>)[k], k, stack);
    if (r === BAIL) return BAIL;
    if (r !== undefined) out += (out.length === 1 ? '' : ',') + quoteString(k) + ':' + r;
  }
  return out + '}';
}

// Byte-level ends of the generic serialiser, called from compiled code.

/** Writes generic text; WRITTEN, OMITTED (nothing written) or GAVE_UP. */
function put(w: ByteWriter, r: Out): number {
  if (typeof r === 'string') {
    w.string(r);
    return WRITTEN;
  }
  return r === undefined ? OMITTED : GAVE_UP;
}

const OPEN_BRACE = new Uint8Array([0x7b]);
const CLOSE_BRACE = new Uint8Array([0x7d]);
const COMMA = new Uint8Array([0x2c]);
const COLON = new Uint8Array([0x3a]);

/**
 * Finishes an object after member keys[from - 1] was omitted: members 0 .. from - 2 have been
 * written after the '{', or nothing at all when from is 1 (the first member's bytes carry the '{').
 * Then a comma is due before the next member written exactly when something was written.
 */
function gRest(o: object, keys: string[], from: number, w: ByteWriter, stack: object[]): number {
  let any = from > 1;
  if (!any) w.bytes(OPEN_BRACE);
  for (let i = from; i < keys.length; i++) {
    const k = keys[i];
    const r = gProp((o as Record<string, unknown>)[k], k, stack);
    if (r === BAIL) return GAVE_UP;
    if (r !== undefined) {
      if (any) w.bytes(COMMA);
      w.string(quoteString(k));
      w.bytes(COLON);
      w.string(r);
      any = true;
    }
  }
  w.bytes(CLOSE_BRACE);
  return WRITTEN;
}

// ---------------------------------------------------------------------------------------------
// Profiles: what was seen in each slot of a shape, gathered without running user code.

const K_STR = 1;
const K_NUM = 2;
const K_BOOL = 4;
const K_NULL = 8;
const K_OBJ = 16;
const K_ARR = 32;
/** Something the compiled code hands to the generic serialiser (getter, toJSON, undefined, ...). */
const K_ANY = 64;

interface Profile {
  kinds: number;
  /** The key list and slots of the first nested object seen here (K_OBJ). */
  obj: ObjectProfile | undefined;
  /** What the elements of arrays seen here were (K_ARR). */
  elem: Profile | undefined;
}

interface ObjectProfile {
  keys: string[];
  slots: Profile[];
}

const MAX_KEYS = 64;
const MAX_PROFILE_DEPTH = 4;
const MAX_ELEMENTS_PROFILED = 64;

function newProfile(): Profile {
  return { kinds: 0, obj: undefined, elem: undefined };
}

function sameKeys(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether reading toJSON from `o` could find something or run code (a proxy on the chain). */
function mayHaveToJSON(o: object): boolean {
  for (let p: object | null = o; p !== null; p = getPrototypeOf(p)) {
    if (isProxy(p) || getOwnPropertyDescriptor(p, 'toJSON') !== undefined) return true;
  }
  return false;
}

/**
 * Whether a proxy is on the prototype chain of the non-proxy `o` (then `'toJSON' in o` would run
 * its `has` trap, where JSON.stringify runs `get`). Object.prototype ends the usual chains.
 */
function protoChainHasProxy(o: object): boolean {
  let p = getPrototypeOf(o);
  while (p !== null && p !== ObjectPrototype) {
    if (isProxy(p)) return true;
    p = getPrototypeOf(p);
  }
  return false;
}

/** Records the own enumerable members of a non-proxy object, reading data properties only. */
function observeMembers(op: ObjectProfile, o: object, depth: number): void {
  const { keys, slots } = op;
  for (let i = 0; i < keys.length; i++) {
    const d = getOwnPropertyDescriptor(o, keys[i]);
    if (d === undefined || !('value' in d)) slots[i].kinds |= K_ANY;
    else observe(slots[i], d.value, depth);
  }
}

function observe(p: Profile, v: unknown, depth: number): void {
  switch (typeof v) {
    case 'string':
      p.kinds |= K_STR;
      return;
    case 'number':
      p.kinds |= K_NUM;
      return;
    case 'boolean':
      p.kinds |= K_BOOL;
      return;
    case 'object':
      break;
    default:
      p.kinds |= K_ANY;
      return;
  }
  if (v === null) {
    p.kinds |= K_NULL;
    return;
  }
  if (depth >= MAX_PROFILE_DEPTH || isProxy(v) || isBoxedPrimitive(v) || mayHaveToJSON(v)) {
    p.kinds |= K_ANY;
    return;
  }
  if (isArray(v)) {
    p.kinds |= K_ARR;
    const elem = (p.elem ??= newProfile());
    const n = v.length < MAX_ELEMENTS_PROFILED ? v.length : MAX_ELEMENTS_PROFILED;
    for (let i = 0; i < n; i++) {
      const d = getOwnPropertyDescriptor(v, i);
      if (d === undefined || !('value' in d)) elem.kinds |= K_ANY;
      else observe(elem, d.value, depth + 1);
    }
    return;
  }
  const keys = objectKeys(v);
  if (keys.length === 0 || keys.length > MAX_KEYS) {
    p.kinds |= K_ANY;
    return;
  }
  if (p.obj === undefined) p.obj = { keys, slots: keys.map(newProfile) };
  else if (!sameKeys(p.obj.keys, keys)) {
    p.kinds |= K_ANY; // served by the generic serialiser inside the nested function
    return;
  }
  p.kinds |= K_OBJ;
  observeMembers(p.obj, v, depth + 1);
}

// ---------------------------------------------------------------------------------------------
// Code generation. Every literal placed in the source is produced by JSON.stringify (a valid
// JavaScript string literal) or is a number; nothing else from the application's data enters the
// source. Constant bytes (keys with their punctuation) are passed in as Uint8Arrays.
//
// Inside a generated function the write position and storage live in locals `p` and `b`; `w.pos`
// is brought up to date (w.pos = p) before anything else writes through w (ensure, a nested
// function, the generic serialiser) and the locals are reloaded after (b = w.buf; p = w.pos).

const lit = (s: string): string => jsonStringify(s);
/** Total slots (object members and array element positions) compiled per shape. */
const MAX_SLOTS = 256;
/**
 * Constants up to this many bytes are written by stores of byte literals: measured here, copying
 * with Uint8Array.prototype.set costs ~15 ns a call whatever the length, a store well under 1 ns.
 * UNROLL_BUDGET bounds the stores per shape, so that a shape with many long keys stays far below
 * the bytecode size TurboFan optimises (it copies the rest with set).
 */
const MAX_UNROLLED = 32;
const UNROLL_BUDGET = 1024;

interface GenContext {
  fns: string[];
  nextId: number;
  slots: number;
  /** Index of the shape in the dispatcher's counters. */
  shape: number;
  /** Constant byte strings, named K0, K1, ... in the generated source. */
  consts: Uint8Array[];
  /** Constant bytes written by unrolled stores in the current shape. */
  unrolled: number;
}

// Counters per shape s, in one Int32Array at 4 * s + ...
/** Objects served. */
const C_HITS = 0;
/** Values handed to the generic serialiser that the profile did not announce. */
const C_DEV = 1;
/** Non-int32 numbers formatted, and those of them only String(v) could write. */
const C_NUMS = 2;
const C_SLOW = 3;
const C_SIZE = 4;

const counter = (ctx: GenContext, c: number): string => `st[${ctx.shape * C_SIZE + c}]`;

/** `if there is no room for n more bytes, grow`, n a JS expression. */
const room = (n: string): string => `if (p + ${n} > b.length) { w.pos = p; w.ensure(${n}); b = w.buf; }`;

/** Statements writing constant bytes at p (room made) and advancing p. */
function putConst(bytes: Uint8Array, ctx: GenContext): string {
  if (bytes.length <= MAX_UNROLLED && ctx.unrolled + bytes.length <= UNROLL_BUDGET) {
    ctx.unrolled += bytes.length;
    let src = '';
    bytes.forEach((x, i) => (src += `b[p${i === 0 ? '' : ` + ${i}`}] = ${x}; `));
    return `${src}p += ${bytes.length};`;
  }
  return `b.set(${constName(bytes, ctx)}, p); p += ${bytes.length};`;
}

function constName(bytes: Uint8Array, ctx: GenContext): string {
  ctx.consts.push(bytes);
  return `K${ctx.consts.length - 1}`;
}

const NULL_BYTES = ascii('null');
const TRUE_BYTES = ascii('true');
const FALSE_BYTES = ascii('false');

/**
 * Where a value is written: an object member (its prefix bytes: ',' unless first, the quoted key,
 * ':'; the first member's prefix carries the object's '{') or an array element (a ',' unless first).
 */
type Site =
  | { kind: 'member'; prefix: Uint8Array; index: number }
  | { kind: 'element' };

/** Statements writing the value `v` (already read) at `site`. */
function genValue(p: Profile, keyLit: string, holder: string, site: Site, ctx: GenContext): string {
  const k = p.kinds;
  const member = site.kind === 'member';
  const len = member ? site.prefix.length : 1;
  // (Generated for each branch that writes it, so that each counts against UNROLL_BUDGET.)
  const pre = (): string => (member ? putConst(site.prefix, ctx) : 'if (i !== 0) b[p++] = 44;');
  // A nested function answered OMITTED (its toJSON gave undefined): a member is dropped (its prefix
  // taken back) and the rest of the object goes to the generic serialiser; an element is null.
  const omitted = member
    ? `w.pos = p - ${len}; return gRest(o, keys, ${site.index + 1}, w, [o]);`
    : `${room('4')} ${putConst(NULL_BYTES, ctx)}`;
  const nested = (call: string): string =>
    `${room(`${len}`)} ${pre()} w.pos = p; r = ${call}; b = w.buf; ` +
    `if (r === ${WRITTEN}) p = w.pos; else if (r === ${GAVE_UP}) return ${GAVE_UP}; else { ${omitted} }`;
  const parts: string[] = [];
  if (k & K_NUM) {
    // Non-int32 finite numbers are counted, and counted again when only String(v) can write them
    // (its text is ASCII: latin1Write writes it as is, into the NUMBER_ROOM made).
    parts.push(
      `if (typeof v === "number") { ${room(`${len + NUMBER_ROOM}`)} ${pre()} ` +
        `if ((v | 0) === v) p = putInt32(b, p, v | 0); ` +
        `else if (v - v === 0) { ${counter(ctx, C_NUMS)}++; r = putShortNumber(b, p, v); ` +
        `if (r < 0) { ${counter(ctx, C_SLOW)}++; r = p + b.latin1Write("" + v, p); } p = r; } ` +
        `else { ${putConst(NULL_BYTES, ctx)} } }`,
    );
  }
  if (k & K_STR) {
    parts.push(
      `if (typeof v === "string") { r = v.length; ${room(`${len + 2} + r`)} ${pre()} ` +
        `r = putAsciiString(b, p, v); if (r >= 0) p = r; else { w.pos = p; quoteInto(w, v); b = w.buf; p = w.pos; } }`,
    );
  }
  if (k & K_BOOL) {
    parts.push(`if (v === true) { ${room(`${len + 4}`)} ${pre()} ${putConst(TRUE_BYTES, ctx)} }`);
    parts.push(`if (v === false) { ${room(`${len + 5}`)} ${pre()} ${putConst(FALSE_BYTES, ctx)} }`);
  }
  if (k & K_NULL) parts.push(`if (v === null) { ${room(`${len + 4}`)} ${pre()} ${putConst(NULL_BYTES, ctx)} }`);
  if (k & K_ARR && p.elem !== undefined && ctx.slots < MAX_SLOTS) {
    const name = genArray(p.elem, ctx);
    parts.push(`if (isArray(v)) { ${nested(`${name}(v, ${keyLit}, w)`)} }`);
  }
  if (k & K_OBJ && p.obj !== undefined && ctx.slots + p.obj.keys.length <= MAX_SLOTS) {
    const name = genObject(p.obj, ctx);
    parts.push(`if (typeof v === "object" && v !== null) { ${nested(`${name}(v, ${keyLit}, w)`)} }`);
  }
  // Anything else: the generic serialiser's text, its prefix written once the value is known not
  // to be omitted.
  const dev = k & K_ANY ? '' : `${counter(ctx, C_DEV)}++; `;
  const generic = member
    ? `if (r === undefined) { w.pos = p; return gRest(o, keys, ${site.index + 1}, w, [o]); } ` +
      `w.pos = p; w.bytes(${constName(site.prefix, ctx)}); w.string(r);`
    : `if (r === undefined) r = "null"; w.pos = p; if (i !== 0) w.bytes(COMMA); w.string(r);`;
  parts.push(
    `{ ${dev}r = gProp(v, ${keyLit}, [${holder}]); if (r === null) return ${GAVE_UP}; ${generic} b = w.buf; p = w.pos; }`,
  );
  return parts.join(' else ');
}

/** Object members, written at p; the first member's prefix opens the object. Ends with p after '}'. */
function genMembers(op: ObjectProfile, ctx: GenContext): string {
  ctx.slots += op.keys.length;
  let src = 'var b = w.buf, p = w.pos, v, r;\n';
  op.keys.forEach((key, i) => {
    const prefix = Uint8Array.from(Buffer.from((i === 0 ? '{' : ',') + lit(key) + ':', 'utf8'));
    src += `v = o[${lit(key)}];\n${genValue(op.slots[i], lit(key), 'o', { kind: 'member', prefix, index: i }, ctx)}\n`;
  });
  return `${src}${room('1')} b[p++] = 125;\nw.pos = p;\n`;
}

function keyTest(keys: string[], neg: boolean): string {
  const parts = [`keys.length ${neg ? '!==' : '==='} ${keys.length}`];
  keys.forEach((k, i) => parts.push(`keys[${i}] ${neg ? '!==' : '==='} ${lit(k)}`));
  return parts.join(neg ? ' || ' : ' && ');
}

/** A nested object of a known shape: function (o, key, w) returning WRITTEN, OMITTED or GAVE_UP. */
function genObject(op: ObjectProfile, ctx: GenContext): string {
  const name = `obj${ctx.nextId++}`;
  const body = genMembers(op, ctx);
  ctx.fns.push(
    `function ${name}(o, key, w) {\n` +
      `var t = o.toJSON;\n` +
      `if (t !== undefined || isArray(o) || isBoxed(o)) { ${counter(ctx, C_DEV)}++; return put(w, gAfterToJSON(o, t, key, [])); }\n` +
      `var keys = objectKeys(o);\n` +
      `if (${keyTest(op.keys, true)}) { ${counter(ctx, C_DEV)}++; return put(w, gObjectFrom(o, keys, [o])); }\n` +
      body +
      `return ${WRITTEN};\n}`,
  );
  return name;
}

/** An array whose elements were profiled as `elem`: function (a, key, w), `a` known to be an array. */
function genArray(elem: Profile, ctx: GenContext): string {
  const name = `arr${ctx.nextId++}`;
  ctx.slots += 1;
  const elemCode = genValue(elem, 'i', 'a', { kind: 'element' }, ctx);
  ctx.fns.push(
    `function ${name}(a, key, w) {\n` +
      `var t = a.toJSON;\n` +
      `if (t !== undefined) { ${counter(ctx, C_DEV)}++; return put(w, gAfterToJSON(a, t, key, [])); }\n` +
      `var len = a.length;\n` +
      `if (typeof len !== "number" || len >>> 0 !== len || len > ${MAX_ARRAY_LENGTH}) return put(w, gArrayFrom(a, len, []));\n` +
      `var b = w.buf, p = w.pos, v, r;\n` +
      `${room('2')} b[p++] = 91;\n` +
      `for (var i = 0; i < len; i++) {\n` +
      `v = a[i];\n${elemCode}\n}\n` +
      `${room('1')} b[p++] = 93;\n` +
      `w.pos = p;\nreturn ${WRITTEN};\n}`,
  );
  return name;
}

interface Shape {
  keys: string[];
  profile: ObjectProfile;
  /** Times it was recompiled after too many deviations. */
  recompiles: number;
}

/** The dispatcher's answers: a compiled status (WRITTEN, OMITTED: declined, GAVE_UP) or NO_SHAPE. */
const NO_SHAPE = 2;
type Dispatch = (o: object, keys: string[], w: ByteWriter) => number;

const HELPER_NAMES = [
  'putInt32',
  'putShortNumber',
  'putAsciiString',
  'quoteInto',
  'isArray',
  'isBoxed',
  'protoChainHasProxy',
  'objectKeys',
  'gProp',
  'gAfterToJSON',
  'gObjectFrom',
  'gArrayFrom',
  'gRest',
  'put',
  'COMMA',
  'st',
  'K',
];

/**
 * One function that recognises each shape by its key list and writes it; NO_SHAPE: no shape
 * matched; OMITTED: the object has the key list but is declined (toJSON, boxed primitive), nothing
 * written; GAVE_UP: the caller restores w.pos.
 */
function compileDispatch(shapes: Shape[], st: Int32Array): Dispatch {
  const ctx: GenContext = { fns: [], nextId: 0, slots: 0, shape: 0, consts: [], unrolled: 0 };
  let dispatch = 'return function dispatch(o, keys, w) {\n';
  shapes.forEach((shape, s) => {
    ctx.slots = 0;
    ctx.unrolled = 0;
    ctx.shape = s;
    const body = genMembers(shape.profile, ctx);
    // (Checked here rather than before dispatching, so that misses do not pay for them; `in`
    // rather than a read, so that a toJSON getter runs only in the caller's JSON.stringify.)
    const guard = `if (protoChainHasProxy(o) || "toJSON" in o || isBoxed(o)) return ${OMITTED};`;
    ctx.fns.push(`function top${s}(o, keys, w) {\n${guard}\n${counter(ctx, C_HITS)}++;\n${body}return ${WRITTEN};\n}`);
    dispatch += `if (${keyTest(shape.keys, false)}) return top${s}(o, keys, w);\n`;
  });
  dispatch += `return ${NO_SHAPE};\n};`;
  // The constants as closure variables of the generated functions.
  const consts = ctx.consts.map((_, i) => `K${i} = K[${i}]`);
  const source = `"use strict";\n${consts.length > 0 ? `var ${consts.join(', ')};\n` : ''}${ctx.fns.join('\n')}\n${dispatch}`;
  const factory = new Function(...HELPER_NAMES, source) as (...helpers: unknown[]) => Dispatch;
  return factory(
    putInt32,
    putShortNumber,
    putAsciiString,
    quoteInto,
    isArray,
    isBoxedPrimitive,
    protoChainHasProxy,
    objectKeys,
    gProp,
    gAfterToJSON,
    gObjectFrom,
    gArrayFrom,
    gRest,
    put,
    COMMA,
    st,
    ctx.consts,
  );
}

// ---------------------------------------------------------------------------------------------

export interface ShapeSerializerOptions {
  /** Sightings of a key list before it is compiled (default 4, at least 2). */
  warmup?: number;
  /** Compiled shapes kept at once (default 8, at most 32). */
  maxShapes?: number;
}

export interface ShapeSerializerStats {
  /** Objects written by a compiled shape. */
  hits: number;
  /** Calls that returned false (learning, no shape, or giving up). */
  misses: number;
  /** Calls answered with false at once because misses dominated recently (backing off). */
  skipped: number;
  /** Objects or values inside compiled shapes that the generic serialiser finished. */
  deviations: number;
  /** Shapes compiled so far (recompilations included), compiled now, and dropped so far. */
  compiles: number;
  shapes: number;
  dropped: number;
  /** True once code generation failed (e.g. --disallow-code-generation-from-strings). */
  disabled: boolean;
}

interface Candidate {
  keys: string[];
  seen: number;
  /** Seen since the replacement hand last passed (CLOCK's reference bit). */
  recent: boolean;
  profile: ObjectProfile | undefined;
  recompiles: number;
  /** Never compiled again (unstable, mostly long doubles, or a toJSON at the top). */
  blocked: boolean;
}

const MAX_CANDIDATES = 16;
const WINDOW = 256;
const MIN_BACKOFF = 1024;
const MAX_BACKOFF = 65536;
const MAX_RECOMPILES = 2;
/** Compilations allowed in a burst; one more is allowed every REFILL_WINDOWS windows. */
const COMPILE_BUDGET = 32;
const REFILL_WINDOWS = 64;

/**
 * Writes objects whose shapes it has learned as the UTF-8 of JSON.stringify's exact output, or
 * declines ("not served: call JSON.stringify"). Never throws.
 */
export class ShapeSerializer {
  private readonly warmup: number;
  private readonly maxShapes: number;
  private shapes: Shape[] = [];
  private readonly candidates: Candidate[] = [];
  private hand = 0;
  private dispatch: Dispatch | undefined;
  /** C_SIZE counters per shape, halved at the end of every window. */
  private st = new Int32Array(0);
  private disabled = false;
  private budget = COMPILE_BUDGET;
  private windows = 0;
  // Backing off: calls left to skip, the next skip length, calls left in the window, served in it.
  private off = 0;
  private backoff = MIN_BACKOFF;
  private left = WINDOW;
  private served = 0;
  // Learning: new key lists remembered in the current window; while the last window remembered
  // many (a stream of one-off objects), only one miss in 8 is learned from, picked by a Weyl
  // sequence (golden-ratio steps) so that no periodic pattern of misses is always skipped.
  private remembered = 0;
  private sampling = false;
  private weyl = 0;
  private readonly counts = { hits: 0, misses: 0, skipped: 0, deviations: 0, compiles: 0, dropped: 0 };

  constructor(options: ShapeSerializerOptions = {}) {
    this.warmup = Math.max(2, Math.floor(options.warmup ?? 4));
    this.maxShapes = Math.min(32, Math.max(1, Math.floor(options.maxShapes ?? 8)));
  }

  /**
   * Appends the UTF-8 bytes of JSON.stringify(value) to w and returns true; or returns false with
   * w.pos unchanged, meaning "not served: call JSON.stringify(value) yourself". `value` is a plain
   * object (prototype Object.prototype or null) already checked by the caller.
   */
  write(value: object, w: ByteWriter): boolean {
    if (this.off !== 0) {
      this.off--;
      this.counts.skipped++;
      return false;
    }
    if (--this.left === 0) this.endWindow();
    // Nothing before dispatching runs user code: a proxy is refused before Object.keys could run
    // its traps (a proxy passes a prototype check through its getPrototypeOf trap, and an array
    // given Object.prototype is still an array to JSON.stringify). toJSON and boxed primitives are
    // checked once a shape matched. (isProxy first: Array.isArray throws on a revoked proxy.)
    if (this.disabled || isProxy(value) || isArray(value)) {
      this.counts.misses++;
      return false;
    }
    const start = w.pos;
    try {
      const keys = objectKeys(value);
      if (this.dispatch !== undefined) {
        const r = this.dispatch(value, keys, w);
        if (r === WRITTEN) {
          this.served++;
          this.counts.hits++;
          return true;
        }
        if (r !== NO_SHAPE) {
          w.pos = start;
          this.counts.misses++;
          return false;
        }
      }
      this.learn(value, keys);
    } catch {
      // A getter, toJSON or trap threw, or the stack or memory ran out: JSON.stringify will say what.
      w.pos = start;
    }
    this.counts.misses++;
    return false;
  }

  stats(): ShapeSerializerStats {
    let deviations = this.counts.deviations;
    for (let i = 0; i < this.shapes.length; i++) deviations += this.st[i * C_SIZE + C_DEV];
    return { ...this.counts, deviations, shapes: this.shapes.length, disabled: this.disabled };
  }

  private learn(value: object, keys: string[]): void {
    if (keys.length === 0 || keys.length > MAX_KEYS) return;
    if (this.sampling && (this.weyl = (this.weyl + 0x9e3779b9) | 0) >>> 29 !== 0) return;
    const cands = this.candidates;
    let c: Candidate | undefined;
    for (let i = 0; i < cands.length; i++) {
      if (sameKeys(cands[i].keys, keys)) {
        c = cands[i];
        break;
      }
    }
    if (c === undefined) {
      // First sighting: remember the key list only (cheap for applications whose objects all differ).
      this.remember({ keys, seen: 1, recent: false, profile: undefined, recompiles: 0, blocked: false });
      return;
    }
    c.recent = true;
    if (c.blocked) return;
    if (mayHaveToJSON(value)) {
      c.blocked = true;
      return;
    }
    c.seen++;
    c.profile ??= { keys, slots: keys.map(newProfile) };
    observeMembers(c.profile, value, 1);
    if (c.seen >= this.warmup && this.budget > 0) {
      cands.splice(cands.indexOf(c), 1);
      this.hand = 0;
      this.addShape({ keys: c.keys, profile: c.profile, recompiles: c.recompiles });
    }
  }

  /**
   * Adds a candidate. When the table is full, CLOCK: the hand skips (and clears) candidates seen
   * again since it last passed, so a recurring key list being warmed up is not pushed out by a
   * stream of one-off objects; after a few probes the newcomer is dropped instead.
   */
  private remember(c: Candidate): void {
    this.remembered++;
    const cands = this.candidates;
    if (cands.length < MAX_CANDIDATES) {
      cands.push(c);
      return;
    }
    for (let probe = 0; probe < 4; probe++) {
      const j = this.hand;
      this.hand = (j + 1) % MAX_CANDIDATES;
      if (!cands[j].recent) {
        cands[j] = c;
        return;
      }
      cands[j].recent = false;
    }
  }

  private addShape(shape: Shape): void {
    let shapes = this.shapes.slice();
    if (shapes.length >= this.maxShapes) {
      // Replace the shape with the fewest hits lately.
      let victim = 0;
      for (let i = 1; i < shapes.length; i++) {
        if (this.st[i * C_SIZE + C_HITS] < this.st[victim * C_SIZE + C_HITS]) victim = i;
      }
      shapes.splice(victim, 1);
    }
    shapes = [shape, ...shapes];
    this.budget--;
    this.counts.compiles++;
    this.install(shapes);
  }

  /** Regenerates the dispatcher for `shapes`, carrying the counters of the shapes that stay. */
  private install(shapes: Shape[]): void {
    const st = new Int32Array(shapes.length * C_SIZE);
    for (let i = 0; i < this.shapes.length; i++) {
      const j = shapes.indexOf(this.shapes[i]);
      if (j >= 0) st.set(this.st.subarray(i * C_SIZE, (i + 1) * C_SIZE), j * C_SIZE);
      else this.counts.deviations += this.st[i * C_SIZE + C_DEV];
    }
    try {
      this.dispatch = shapes.length === 0 ? undefined : compileDispatch(shapes, st);
    } catch {
      this.disabled = true;
      this.dispatch = undefined;
      shapes = [];
    }
    this.shapes = shapes;
    this.st = st;
  }

  private endWindow(): void {
    this.left = WINDOW;
    if (this.served * 2 < WINDOW) {
      this.off = this.backoff;
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF);
    } else this.backoff = MIN_BACKOFF;
    this.served = 0;
    this.sampling = this.remembered > WINDOW / 4;
    this.remembered = 0;
    if (++this.windows % REFILL_WINDOWS === 0 && this.budget < COMPILE_BUDGET) this.budget++;
    const st = this.st;
    const keep = this.shapes.filter((s, i) => {
      const hits = st[i * C_SIZE + C_HITS];
      const dev = st[i * C_SIZE + C_DEV];
      const nums = st[i * C_SIZE + C_NUMS];
      const slow = st[i * C_SIZE + C_SLOW];
      // Mostly numbers that only String(v) can write (full-precision doubles): slower than
      // JSON.stringify, which writes them without making strings. Left to it from now on.
      if (nums >= 128 && slow * 2 > nums) {
        this.demote(s, true);
        return false;
      }
      // Often leaving the compiled path: relearned from fresh sightings (the profile kept, so the
      // types seen are merged); after MAX_RECOMPILES left to JSON.stringify.
      if (dev >= 16 && dev * 4 > hits) {
        this.demote(s, s.recompiles >= MAX_RECOMPILES);
        return false;
      }
      return true;
    });
    if (keep.length !== this.shapes.length) this.install(keep);
    for (let i = 0; i < this.st.length; i++) {
      if (i % C_SIZE === C_DEV) this.counts.deviations += this.st[i] - (this.st[i] >> 1);
      this.st[i] >>= 1;
    }
  }

  /** Takes a shape back to the candidates, to be relearned or (blocked) left alone. */
  private demote(s: Shape, blocked: boolean): void {
    this.counts.dropped++;
    const c: Candidate = { keys: s.keys, seen: 1, recent: true, profile: s.profile, recompiles: s.recompiles + 1, blocked };
    if (this.candidates.length >= MAX_CANDIDATES) this.candidates.splice(this.hand, 1);
    this.candidates.push(c);
  }
}
