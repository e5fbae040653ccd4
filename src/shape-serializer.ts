// A JSON serialiser specialised for the shapes of the objects an application actually sends.
//
// ShapeSerializer.stringify(value) returns exactly what JSON.stringify(value) returns, or undefined,
// which means "not handled: call JSON.stringify yourself". It learns the key lists (in Object.keys
// order) and the value types of the objects it is shown, compiles one straight-line function per
// frequent shape (new Function), and serves later objects of that shape from it.
//
// The rules that keep the output byte-identical:
// - Before committing to an object, only operations that run no user code are used (util.types
//   checks, Object.keys and Object.getPrototypeOf on non-proxies, `'toJSON' in value` once no
//   proxy is on the prototype chain). A miss returns undefined having observed nothing, so the
//   caller's JSON.stringify sees the object untouched.
// - Once committed (the key list matched a compiled shape), every property is read exactly once, in
//   JSON.stringify's order, depth first. A value the compiled code does not expect (another type, a
//   nested object of another shape, a toJSON, a boxed primitive, a proxy, a hole) is handed, with the
//   value already read, to a generic serialiser written from the ECMAScript algorithm
//   (SerializeJSONProperty), which finishes the object without reading anything twice.
// - The generic serialiser gives up (undefined) only where JSON.stringify throws (BigInt, cycles,
//   exceptions from getters, toJSON or proxy traps) or where nesting is deeper than MAX_DEPTH.
//   If user code (a getter, a trap) ran before giving up, the caller's JSON.stringify runs it again.
// - Numbers use a shortcut only where its digits provably equal Number.prototype.toString's
//   (see formatFinite); strings are copied between quotes only when nothing in them needs escaping,
//   otherwise JSON.stringify(string) quotes them.
import { types } from 'node:util';

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

/** Internal result of the serialisers: JSON text, undefined (the member is omitted), or BAIL. */
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

// ---------------------------------------------------------------------------------------------
// Leaves: numbers and strings.

const ZEROS = ['', '0', '00', '000', '0000', '00000', '000000', '0000000', '00000000'];
const TWO_53 = 9007199254740992;

/**
 * Number.prototype.toString of a finite number (what JSON.stringify writes), faster than V8's
 * for the numbers sensors send. Shortcuts:
 * - int32 (and -0): V8's own small-integer conversion.
 * - other integers below 2^53: every such integer is a double, so toString writes its exact
 *   digits; they are written as two int32 halves.
 * - below 1e9 with at most 6 decimals: if n / 1e6 === |v| for n = round(|v| * 1e6), the decimal
 *   D = n·10^-6 rounds to v (division of exact integers is correctly rounded). Two different
 *   decimals with at most 6 fraction digits are ≥ 1e-6 apart, more than 8 ulps below 1e9, so no
 *   other such decimal rounds to v: D without its trailing zeros is the shortest decimal that
 *   round-trips, which is what toString writes; |v| ≥ 1e-6 keeps toString out of exponent
 *   notation. If the test fails, no decimal of ≤ 6 fraction digits rounds to v.
 * Anything else goes to String(v).
 */
export function formatFinite(v: number): string {
  const s = formatShort(v);
  return s !== undefined ? s : '' + v;
}

/** The shortcuts of formatFinite; undefined where only String(v) will do. */
function formatShort(v: number): string | undefined {
  if ((v | 0) === v) return '' + v;
  let a = v;
  let sign = '';
  if (a < 0) {
    a = -a;
    sign = '-';
  }
  if (mathFloor(a) === a) {
    if (a >= TWO_53) return undefined;
    // a ≥ 2^31 here, so hi ≥ 2.
    let hi = mathFloor(a / 1e9);
    let lo = a - hi * 1e9;
    if (lo < 0) {
      hi -= 1;
      lo += 1e9;
    } else if (lo >= 1e9) {
      hi += 1;
      lo -= 1e9;
    }
    const los = '' + lo;
    return sign + hi + ZEROS[9 - los.length] + los;
  }
  if (a < 1e9) {
    const n = mathRound(a * 1e6);
    if (n / 1e6 === a) {
      const ip = mathFloor(a);
      // 0 < f < 1e6: v is not an integer, and ip is exact (ulp(1e9) < 1e-6).
      let f = n - ip * 1e6;
      let d = 6;
      while (d > 1 && f % 10 === 0) {
        f /= 10;
        d--;
      }
      const fs = '' + f;
      return sign + ip + '.' + ZEROS[d - fs.length] + fs;
    }
  }
  return undefined;
}

const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/** JSON.stringify(s) for a string: copied between quotes unless a character needs escaping. */
export function quoteString(s: string): string {
  const n = s.length;
  if (n > 64) return NEEDS_ESCAPE.test(s) ? jsonStringify(s) : '"' + s + '"';
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    // Control characters, '"', '\', and any surrogate (JSON.stringify escapes lone ones).
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return jsonStringify(s);
  }
  return '"' + s + '"';
}

// ---------------------------------------------------------------------------------------------
// The generic serialiser: ECMAScript's SerializeJSONProperty / SerializeJSONObject /
// SerializeJSONArray (no replacer, no gap), taking over with values already read.

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
      return v - v === 0 ? formatFinite(v) : 'null';
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
  const r = gObjectFrom(o, objectKeys(o), 0, '{', stack);
  stack.pop();
  return r;
}

/** Serialises members keys[i..] of `o` after `out` (which is "{" or "{...members"). */
function gObjectFrom(o: object, keys: string[], i: number, out: string, stack: object[]): Out {
  for (; i < keys.length; i++) {
    const k = keys[i];
    const r = gProp((o as Record<string, unknown>)[k], k, stack);
    if (r === BAIL) return BAIL;
    if (r !== undefined) out += (out.length === 1 ? '' : ',') + quoteString(k) + ':' + r;
  }
  return out + '}';
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
// JavaScript string literal); nothing else from the application's data enters the source.

const lit = (s: string): string => jsonStringify(s);
/** Total slots (object members and array element positions) compiled per shape. */
const MAX_SLOTS = 256;

interface GenContext {
  fns: string[];
  nextId: number;
  slots: number;
  /** Index of the shape in the dispatcher's counters. */
  shape: number;
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

/** Statements handling `v`; `emit(x)` appends JS expression x to the output, `other` is run for the rest. */
function genValue(
  p: Profile,
  keyLit: string,
  holder: string,
  emit: (x: string) => string,
  other: string,
  ctx: GenContext,
): string {
  const parts: string[] = [];
  const k = p.kinds;
  // Non-int32 finite numbers: counted, and counted again when only String(v) can write them.
  // (formatShort is called directly: one call level keeps TurboFan's inlining predictable.)
  const nums = counter(ctx, C_NUMS);
  const slow = counter(ctx, C_SLOW);
  const fmt = `(${nums}++, (r = fmt(v)) !== undefined ? r : (${slow}++, "" + v))`;
  if (k & K_NUM) parts.push(`if (typeof v === "number") ${emit(`((v | 0) === v ? "" + v : v - v === 0 ? ${fmt} : "null")`)}`);
  if (k & K_STR) parts.push(`if (typeof v === "string") ${emit('quote(v)')}`);
  if (k & K_BOOL) parts.push(`if (v === true) ${emit('"true"')} else if (v === false) ${emit('"false"')}`);
  if (k & K_NULL) parts.push(`if (v === null) ${emit('"null"')}`);
  if (k & K_ARR && p.elem !== undefined && ctx.slots < MAX_SLOTS) {
    const name = genArray(p.elem, ctx);
    parts.push(`if (isArray(v)) { r = ${name}(v, ${keyLit}); ${other} }`);
  }
  if (k & K_OBJ && p.obj !== undefined && ctx.slots + p.obj.keys.length <= MAX_SLOTS) {
    const name = genObject(p.obj, ctx);
    parts.push(`if (typeof v === "object" && v !== null) { r = ${name}(v, ${keyLit}); ${other} }`);
  }
  const dev = k & K_ANY ? '' : `${counter(ctx, C_DEV)}++; `;
  parts.push(`{ ${dev}r = gProp(v, ${keyLit}, [${holder}]); ${other} }`);
  return parts.join(' else ');
}

/** Object members: `out` starts as "{"; returns statements that end by returning the text. */
function genMembers(op: ObjectProfile, ctx: GenContext): string {
  ctx.slots += op.keys.length;
  let src = 'var out = "{", v, r;\n';
  op.keys.forEach((key, i) => {
    const prefix = (i === 0 ? '' : ',') + lit(key) + ':';
    const keyLit = lit(key);
    // The result r of a nested or generic serialisation: text, BAIL, or omitted (then the rest of
    // the object goes to the generic serialiser, which knows whether a comma is due).
    const other =
      `if (typeof r === "string") out += ${lit(prefix)} + r; else if (r === null) return null; ` +
      `else return gObjectFrom(o, keys, ${i + 1}, out, [o]);`;
    const emit = (x: string): string => (x.startsWith('"') ? `out += ${lit(prefix + JSON.parse(x))};` : `out += ${lit(prefix)} + ${x};`);
    src += `v = o[${keyLit}];\n${genValue(op.slots[i], keyLit, 'o', emit, other, ctx)}\n`;
  });
  return src + 'return out + "}";\n';
}

function keyTest(keys: string[], neg: boolean): string {
  const parts = [`keys.length ${neg ? '!==' : '==='} ${keys.length}`];
  keys.forEach((k, i) => parts.push(`keys[${i}] ${neg ? '!==' : '==='} ${lit(k)}`));
  return parts.join(neg ? ' || ' : ' && ');
}

/** A nested object of a known shape: function (o, key) returning text, undefined or BAIL. */
function genObject(op: ObjectProfile, ctx: GenContext): string {
  const name = `obj${ctx.nextId++}`;
  const body = genMembers(op, ctx);
  ctx.fns.push(
    `function ${name}(o, key) {\n` +
      `var t = o.toJSON;\n` +
      `if (t !== undefined || isArray(o) || isBoxed(o)) { ${counter(ctx, C_DEV)}++; return gAfterToJSON(o, t, key, []); }\n` +
      `var keys = objectKeys(o);\n` +
      `if (${keyTest(op.keys, true)}) { ${counter(ctx, C_DEV)}++; return gObjectFrom(o, keys, 0, "{", [o]); }\n` +
      body +
      `}`,
  );
  return name;
}

/** An array whose elements were profiled as `elem`: function (a, key), `a` known to be an array. */
function genArray(elem: Profile, ctx: GenContext): string {
  const name = `arr${ctx.nextId++}`;
  ctx.slots += 1;
  // One concatenation per element (sep + x is a short flat string): fewer rope nodes to flatten.
  const emit = (x: string): string => `out += sep + ${x};`;
  const other = `if (typeof r === "string") out += sep + r; else if (r === null) return null; else out += sep + "null";`;
  const elemCode = genValue(elem, 'i', 'a', emit, other, ctx);
  ctx.fns.push(
    `function ${name}(a, key) {\n` +
      `var t = a.toJSON;\n` +
      `if (t !== undefined) { ${counter(ctx, C_DEV)}++; return gAfterToJSON(a, t, key, []); }\n` +
      `var len = a.length;\n` +
      `if (typeof len !== "number" || len >>> 0 !== len || len > ${MAX_ARRAY_LENGTH}) return gArrayFrom(a, len, []);\n` +
      `if (len === 0) return "[]";\n` +
      `var out = "[", sep = "", v, r;\n` +
      `for (var i = 0; i < len; i++) {\n` +
      `v = a[i];\n${elemCode}\nsep = ",";\n}\n` +
      `return out + "]";\n}`,
  );
  return name;
}

interface Shape {
  keys: string[];
  profile: ObjectProfile;
  /** Times it was recompiled after too many deviations. */
  recompiles: number;
}

type Dispatch = (o: object, keys: string[]) => string | null | false;

const HELPER_NAMES = ['fmt', 'quote', 'isArray', 'isBoxed', 'protoChainHasProxy', 'objectKeys', 'gProp', 'gAfterToJSON', 'gObjectFrom', 'gArrayFrom', 'st'];

/**
 * One function that recognises each shape by its key list and serialises it; false: no shape
 * matched, null: the object has the key list but is not served (toJSON, array, boxed primitive).
 */
function compileDispatch(shapes: Shape[], st: Int32Array): Dispatch {
  const fns: string[] = [];
  let dispatch = 'return function dispatch(o, keys) {\n';
  const ctx: GenContext = { fns, nextId: 0, slots: 0, shape: 0 };
  shapes.forEach((shape, s) => {
    ctx.slots = 0;
    ctx.shape = s;
    const body = genMembers(shape.profile, ctx);
    // (Checked here rather than before dispatching, so that misses do not pay for them; `in`
    // rather than a read, so that a toJSON getter runs only in the caller's JSON.stringify.)
    const guard = `if (protoChainHasProxy(o) || "toJSON" in o || isBoxed(o)) return null;`;
    fns.push(`function top${s}(o, keys) {\n${guard}\n${counter(ctx, C_HITS)}++;\n${body}}`);
    dispatch += `if (${keyTest(shape.keys, false)}) return top${s}(o, keys);\n`;
  });
  dispatch += 'return false;\n};';
  const source = `"use strict";\n${fns.join('\n')}\n${dispatch}`;
  const factory = new Function(...HELPER_NAMES, source) as (...helpers: unknown[]) => Dispatch;
  return factory(formatShort, quoteString, isArray, isBoxedPrimitive, protoChainHasProxy, objectKeys, gProp, gAfterToJSON, gObjectFrom, gArrayFrom, st);
}

// ---------------------------------------------------------------------------------------------

export interface ShapeSerializerOptions {
  /** Sightings of a key list before it is compiled (default 4, at least 2). */
  warmup?: number;
  /** Compiled shapes kept at once (default 8, at most 32). */
  maxShapes?: number;
}

export interface ShapeSerializerStats {
  /** Objects serialised by a compiled shape. */
  hits: number;
  /** Calls that returned undefined (learning, no shape, or bailing out). */
  misses: number;
  /** Calls answered with undefined at once because misses dominated recently (backing off). */
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
 * Serialises objects whose shapes it has learned; `stringify` returns JSON.stringify's exact
 * output or undefined ("not handled: call JSON.stringify"). Never throws.
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

  /** JSON.stringify(value) exactly, or undefined: not handled, call JSON.stringify(value). */
  stringify(value: object): string | undefined {
    if (this.off !== 0) {
      this.off--;
      this.counts.skipped++;
      return undefined;
    }
    if (--this.left === 0) this.endWindow();
    // Nothing before dispatching runs user code: a proxy is refused before Object.keys could
    // run its traps. toJSON and boxed primitives are checked once a shape matched.
    // (isProxy first: Array.isArray throws on a revoked proxy.)
    if (typeof value !== 'object' || value === null || this.disabled || isProxy(value) || isArray(value)) {
      this.counts.misses++;
      return undefined;
    }
    try {
      const keys = objectKeys(value);
      if (this.dispatch !== undefined) {
        const r = this.dispatch(value, keys);
        if (typeof r === 'string') {
          this.served++;
          this.counts.hits++;
          return r;
        }
        if (r === null) {
          this.counts.misses++;
          return undefined;
        }
      }
      this.learn(value, keys);
    } catch {
      // A getter, toJSON or trap threw, or the stack ran out: JSON.stringify will say what.
    }
    this.counts.misses++;
    return undefined;
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
