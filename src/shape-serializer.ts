// A JSON serialiser specialised for the shapes of the objects an application actually sends.
//
// ShapeSerializer.stringify(value) returns exactly what JSON.stringify(value) returns, or undefined,
// which means "not handled: call JSON.stringify yourself". It learns the key lists (in Object.keys
// order) and the value types of the objects it is shown, compiles one straight-line function per
// frequent shape (new Function), and serves later objects of that shape from it.
//
// The rules that keep the output byte-identical:
// - Before committing to an object, only operations that run no user code are used (util.types
//   checks, Object.keys on a non-proxy, `'toJSON' in value`). A miss returns undefined having
//   observed nothing, so the caller's JSON.stringify sees the object untouched. (The one exception:
//   a proxy in the top object's prototype chain sees a `has` trap for "toJSON".)
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
 * - below 1e9 with at most 6 decimals: if n / 10^d === |v| for n = round(|v| * 10^d) and the
 *   smallest such d, then the decimal n·10^-d rounds to v; any decimal with fewer fraction digits
 *   does not (the nearest one was tried and failed); and no other decimal with d fraction digits
 *   rounds to v, because decimals 10^-d apart are more than 8 ulps apart below 1e9 (d ≤ 6). So it
 *   is the shortest round-tripping decimal, which is what toString writes, and |v| ≥ 10^-6 keeps
 *   toString out of exponent notation.
 * Anything else goes to String(v).
 */
export function formatFinite(v: number): string {
  if ((v | 0) === v) return '' + v;
  let a = v;
  let sign = '';
  if (a < 0) {
    a = -a;
    sign = '-';
  }
  if (mathFloor(a) === a) {
    if (a >= TWO_53) return '' + v;
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
    let p = 10;
    for (let d = 1; d <= 6; d++, p *= 10) {
      const n = mathRound(a * p);
      if (n / p === a) {
        const ip = mathFloor(a);
        const fs = '' + (n - ip * p);
        return sign + ip + '.' + ZEROS[d - fs.length] + fs;
      }
    }
  }
  return '' + v;
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
  if (k & K_NUM) parts.push(`if (typeof v === "number") ${emit('((v | 0) === v ? "" + v : v - v === 0 ? fmt(v) : "null")')}`);
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
  const dev = k & K_ANY ? '' : `dev[${ctx.shape}]++; `;
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
      `if (t !== undefined || isArray(o) || isBoxed(o)) { dev[${ctx.shape}]++; return gAfterToJSON(o, t, key, []); }\n` +
      `var keys = objectKeys(o);\n` +
      `if (${keyTest(op.keys, true)}) { dev[${ctx.shape}]++; return gObjectFrom(o, keys, 0, "{", [o]); }\n` +
      body +
      `}`,
  );
  return name;
}

/** An array whose elements were profiled as `elem`: function (a, key), `a` known to be an array. */
function genArray(elem: Profile, ctx: GenContext): string {
  const name = `arr${ctx.nextId++}`;
  ctx.slots += 1;
  const emit = (x: string): string => `out += ${x};`;
  const other = `if (typeof r === "string") out += r; else if (r === null) return null; else out += "null";`;
  const elemCode = genValue(elem, 'i', 'a', emit, other, ctx);
  ctx.fns.push(
    `function ${name}(a, key) {\n` +
      `var t = a.toJSON;\n` +
      `if (t !== undefined) { dev[${ctx.shape}]++; return gAfterToJSON(a, t, key, []); }\n` +
      `var len = a.length;\n` +
      `if (typeof len !== "number" || len >>> 0 !== len || len > ${MAX_ARRAY_LENGTH}) return gArrayFrom(a, len, []);\n` +
      `if (len === 0) return "[]";\n` +
      `var out = "[", v, r;\n` +
      `for (var i = 0; i < len; i++) {\n` +
      `if (i !== 0) out += ",";\n` +
      `v = a[i];\n${elemCode}\n}\n` +
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

const HELPER_NAMES = ['fmt', 'quote', 'isArray', 'isBoxed', 'objectKeys', 'gProp', 'gAfterToJSON', 'gObjectFrom', 'gArrayFrom', 'hits', 'dev'];

/** One function that recognises each shape by its key list and serialises it; false: no shape. */
function compileDispatch(shapes: Shape[], hits: Int32Array, dev: Int32Array): Dispatch {
  const fns: string[] = [];
  let dispatch = 'return function dispatch(o, keys) {\n';
  const ctx: GenContext = { fns, nextId: 0, slots: 0, shape: 0 };
  shapes.forEach((shape, s) => {
    ctx.slots = 0;
    ctx.shape = s;
    const body = genMembers(shape.profile, ctx);
    fns.push(`function top${s}(o, keys) {\nif (isBoxed(o)) return null;\nhits[${s}]++;\n${body}}`);
    dispatch += `if (${keyTest(shape.keys, false)}) return top${s}(o, keys);\n`;
  });
  dispatch += 'return false;\n};';
  const source = `"use strict";\n${fns.join('\n')}\n${dispatch}`;
  const factory = new Function(...HELPER_NAMES, source) as (...helpers: unknown[]) => Dispatch;
  return factory(formatFinite, quoteString, isArray, isBoxedPrimitive, objectKeys, gProp, gAfterToJSON, gObjectFrom, gArrayFrom, hits, dev);
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
  /** Shapes compiled so far (recompilations included), and compiled now. */
  compiles: number;
  shapes: number;
  /** True once code generation failed (e.g. --disallow-code-generation-from-strings). */
  disabled: boolean;
}

interface Candidate {
  keys: string[];
  seen: number;
  profile: ObjectProfile | undefined;
  recompiles: number;
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
  private nextCandidate = 0;
  private dispatch: Dispatch | undefined;
  private hits = new Int32Array(0);
  private dev = new Int32Array(0);
  private disabled = false;
  private budget = COMPILE_BUDGET;
  private windows = 0;
  // Backing off: calls left to skip, the next skip length, calls left in the window, served in it.
  private off = 0;
  private backoff = MIN_BACKOFF;
  private left = WINDOW;
  private served = 0;
  private readonly counts = { hits: 0, misses: 0, skipped: 0, deviations: 0, compiles: 0 };

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
    if (typeof value !== 'object' || value === null || isProxy(value) || this.disabled) {
      this.counts.misses++;
      return undefined;
    }
    try {
      // A toJSON at the top (own or inherited, whatever its value) is left to JSON.stringify. `in`
      // rather than a read: a toJSON getter must not run here if JSON.stringify is to run it.
      if ('toJSON' in value || isArray(value)) {
        this.counts.misses++;
        return undefined;
      }
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
    for (let i = 0; i < this.dev.length; i++) deviations += this.dev[i];
    return { ...this.counts, deviations, shapes: this.shapes.length, disabled: this.disabled };
  }

  private learn(value: object, keys: string[]): void {
    if (keys.length === 0 || keys.length > MAX_KEYS) return;
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
      const fresh: Candidate = { keys, seen: 1, profile: undefined, recompiles: 0 };
      if (cands.length < MAX_CANDIDATES) cands.push(fresh);
      else {
        cands[this.nextCandidate] = fresh;
        this.nextCandidate = (this.nextCandidate + 1) % MAX_CANDIDATES;
      }
      return;
    }
    if (c.recompiles > MAX_RECOMPILES) return;
    c.seen++;
    c.profile ??= { keys, slots: keys.map(newProfile) };
    observeMembers(c.profile, value, 1);
    if (c.seen >= this.warmup && this.budget > 0) {
      cands.splice(cands.indexOf(c), 1);
      this.nextCandidate = 0;
      this.addShape({ keys: c.keys, profile: c.profile, recompiles: c.recompiles });
    }
  }

  private addShape(shape: Shape): void {
    let shapes = this.shapes.slice();
    if (shapes.length >= this.maxShapes) {
      // Replace the shape with the fewest hits since the last window.
      let victim = 0;
      for (let i = 1; i < shapes.length; i++) if (this.hits[i] < this.hits[victim]) victim = i;
      shapes.splice(victim, 1);
    }
    shapes = [shape, ...shapes];
    this.budget--;
    this.counts.compiles++;
    this.install(shapes);
  }

  /** Regenerates the dispatcher for `shapes`, carrying the counters of the shapes that stay. */
  private install(shapes: Shape[]): void {
    const hits = new Int32Array(shapes.length);
    const dev = new Int32Array(shapes.length);
    for (let i = 0; i < this.shapes.length; i++) {
      const j = shapes.indexOf(this.shapes[i]);
      if (j >= 0) {
        hits[j] = this.hits[i];
        dev[j] = this.dev[i];
      } else this.counts.deviations += this.dev[i];
    }
    try {
      this.dispatch = shapes.length === 0 ? undefined : compileDispatch(shapes, hits, dev);
    } catch {
      this.disabled = true;
      this.dispatch = undefined;
      shapes = [];
    }
    this.shapes = shapes;
    this.hits = hits;
    this.dev = dev;
  }

  private endWindow(): void {
    this.left = WINDOW;
    if (this.served * 2 < WINDOW) {
      this.off = this.backoff;
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF);
    } else this.backoff = MIN_BACKOFF;
    this.served = 0;
    if (++this.windows % REFILL_WINDOWS === 0 && this.budget < COMPILE_BUDGET) this.budget++;
    // A shape whose objects often leave the compiled path is relearned from fresh sightings (its
    // profile kept, so the types seen are merged); after MAX_RECOMPILES it is left to JSON.stringify.
    const unstable = this.shapes.filter((_s, i) => this.dev[i] >= 16 && this.dev[i] * 4 > this.hits[i]);
    if (unstable.length > 0) {
      for (const s of unstable) {
        const c: Candidate = { keys: s.keys, seen: 1, profile: s.profile, recompiles: s.recompiles + 1 };
        if (this.candidates.length >= MAX_CANDIDATES) this.candidates.shift();
        this.candidates.push(c);
      }
      this.install(this.shapes.filter((s) => !unstable.includes(s)));
    }
    for (let i = 0; i < this.hits.length; i++) {
      this.counts.deviations += this.dev[i] - (this.dev[i] >> 1);
      this.hits[i] >>= 1;
      this.dev[i] >>= 1;
    }
  }
}
