// ShapeSerializer.write: the bytes it appends are the UTF-8 of JSON.stringify's text, byte for byte,
// or it appends nothing and returns false ("not served"); it observes nothing JSON.stringify would
// not (getter reads, proxy traps), and it really serves the shapes it has learned. Every write goes
// into a ByteWriter that already holds bytes and has little room, so it grows in the middle of
// values. Differential property tests (fast-check, fixed seed) and one example test per edge case.
// Reproduce a property failure with IOTTLY_SER_SEED=<seed> (printed on failure).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fc from 'fast-check';

const require = createRequire(import.meta.url);
const { ShapeSerializer, putInt32, putShortNumber, putAsciiString } = require('../dist/shape-serializer.js');
const { ByteWriter } = require('../dist/byte-writer.js');

const SEED = process.env.IOTTLY_SER_SEED ? Number(process.env.IOTTLY_SER_SEED) : 20241207;
const params = (numRuns) => ({ seed: SEED, numRuns });

/** JSON.stringify's result, or THROWS when it throws. */
const THROWS = Symbol('throws');
function reference(v) {
  try {
    return JSON.stringify(v);
  } catch {
    return THROWS;
  }
}

/** Bytes a writer holds before the value, which a write must leave as they are. */
const PRELUDE = Buffer.from('{"before":"é"}\n');
let capacity = 0;

/**
 * A writer holding PRELUDE, with room for 0 to 47 more bytes (cycling), so that most values make it
 * grow, at every position in turn.
 */
function smallWriter() {
  const w = new ByteWriter(PRELUDE.length + (capacity++ % 48));
  w.bytes(PRELUDE);
  return w;
}

/**
 * s.write(v, w), checked as far as it can be without JSON.stringify: the bytes before the start are
 * kept, a false leaves w.pos where it was, and what was written is well-formed UTF-8. Returns the
 * bytes written, or undefined when not served.
 */
function attempt(s, v, w = smallWriter()) {
  const start = w.pos;
  const before = Buffer.from(w.buf.subarray(0, start));
  const ok = s.write(v, w);
  assert.equal(typeof ok, 'boolean');
  assert.ok(w.buf.subarray(0, start).equals(before), 'bytes before the value changed');
  if (!ok) {
    assert.equal(w.pos, start, 'declined but w.pos moved');
    return undefined;
  }
  assert.ok(w.pos > start);
  return Buffer.from(w.buf.subarray(start, w.pos));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The text s.write(v) served (the bytes decoded, so they must be valid UTF-8), or undefined. */
function str(s, v) {
  const got = attempt(s, v);
  return got === undefined ? undefined : utf8.decode(got);
}

/**
 * The serializer's answer must be not-served or exactly the UTF-8 of JSON.stringify's text; when
 * not served, JSON.stringify throws or gives what the caller then uses. Returns the text served.
 */
function check(s, v, label = '') {
  const want = reference(v);
  const got = attempt(s, v);
  if (got === undefined) return undefined;
  assert.notEqual(want, THROWS, `${label} served although JSON.stringify throws: ${got}`);
  assert.equal(typeof want, 'string', `${label} served although JSON.stringify gives ${String(want)}`);
  if (!got.equals(Buffer.from(want))) assert.equal(got.toString('latin1'), Buffer.from(want).toString('latin1'), label);
  return want;
}

/** Warms `s` up on `make()` and returns a served result (asserting it is served and exact). */
function served(s, make, label = '') {
  let got;
  for (let i = 0; i < 8; i++) got = check(s, make(i), label);
  assert.notEqual(got, undefined, `${label} not served after warm-up`);
  return got;
}

const sensor = (i = 0) => ({ sensor: 'temp-01', seq: 123 + i, value: 21.5 + i / 10, unit: 'C', ok: true, ts: 1733000000000 + i });
const nested = (i = 0) => ({
  id: 'dev-7',
  readings: { t: 21.5 + i, h: 40.25, p: 1013.2 },
  tags: ['roof', 'north', 'v' + i],
});

// ---------------------------------------------------------------------------------------------
// Generators for the shape-sequence property: a shape, objects conforming to it, mutated objects.

const keyArb = fc.oneof(
  fc.constantFrom('sensor', 'seq', 'value', 'unit', 'ok', 'ts', 'id', 'readings', 'tags', 't', 'h', 'p'),
  fc.constantFrom('0', '1', '7', '42', '4294967294', '4294967295', '-1', '01', '1.5', '__proto__', 'toJSON', 'constructor', ''),
  fc.string({ unit: 'binary', maxLength: 4 }),
);

const typeArb = fc.letrec((tie) => ({
  type: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    tie('obj'),
    tie('arr'),
  ),
  leaf: fc.constantFrom('str', 'num', 'int', 'bigint', 'dec', 'bool', 'null', 'numOrNull'),
  obj: fc
    .uniqueArray(fc.tuple(keyArb, tie('type')), { minLength: 1, maxLength: 5, selector: (e) => e[0] })
    .map((fields) => ({ fields })),
  arr: tie('type').map((elem) => ({ elem })),
})).type;

const leafValue = {
  str: fc.string({ unit: 'binary', maxLength: 12 }),
  num: fc.double(),
  int: fc.integer(),
  bigint: fc.maxSafeInteger(),
  dec: fc.integer({ min: -1e9, max: 1e9 }).chain((n) => fc.constantFrom(n / 10, n / 100, n / 1000, n / 1e6)),
  bool: fc.boolean(),
  null: fc.constant(null),
  numOrNull: fc.option(fc.double({ noNaN: true }), { nil: null }),
};

function valueArb(type) {
  if (typeof type === 'string') return leafValue[type];
  if (type.elem !== undefined) return fc.array(valueArb(type.elem), { maxLength: 4 });
  return fc.tuple(...type.fields.map(([, t]) => valueArb(t))).map((vals) =>
    Object.fromEntries(type.fields.map(([k], i) => [k, vals[i]])),
  );
}

const topShapeArb = typeArb.chain((t) =>
  typeof t === 'object' && t.fields !== undefined ? fc.constant(t) : fc.tuple(keyArb, fc.constant(t)).map((f) => ({ fields: [f] })),
);

/** Deep copy of a conforming (JSON-like) value, keeping own keys such as "__proto__" as data. */
function clone(v) {
  if (Array.isArray(v)) return v.map(clone);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.keys(v).map((k) => [k, clone(v[k])]));
  return v;
}

/** Every [holder, key] reachable in a cloned value (the root's members first). */
function slots(root) {
  const out = [];
  const walk = (o) => {
    for (const k of Object.keys(o)) {
      out.push([o, k]);
      const v = o[k];
      if (v !== null && typeof v === 'object') walk(v);
    }
  };
  walk(root);
  return out;
}

class Reading {
  constructor() {
    this.t = 1.5;
  }
}

/** Values JSON.stringify treats specially, each made fresh (log: where observable reads go). */
const weird = [
  () => undefined,
  () => function f() {},
  () => Symbol('s'),
  () => 10n,
  () => NaN,
  () => -0,
  () => -Infinity,
  () => 'a\ud800b',
  () => '\u2028"\\\n\u0000\udc00\ud83d\ude00',
  () => new Number(-0),
  () => new String('boxed'),
  () => new Boolean(false),
  () => Object(3n),
  () => Object(Symbol('boxed')),
  () => new Date(86400000),
  () => ({ toJSON: (k) => `key:${k}` }),
  () => ({ toJSON: () => undefined }),
  () => ({ toJSON: 'not callable', x: 1 }),
  () => Object.assign(Object.create(null), { n: 1, s: 'x' }),
  () => new Reading(),
  () => [1, , 3], // eslint-disable-line no-sparse-arrays
  () => new Array(3),
  () => [undefined, () => 1, Symbol('x')],
  () => new Map([[1, 2]]),
  () => new Uint8Array([1, 2]),
  () => Object.defineProperty({ a: 1 }, 'hidden', { value: 2, enumerable: false }),
  () => ({ [Symbol('k')]: 1, b: 2 }),
  () => ({ sensor: 'other', seq: 1 }),
  () => ({}),
  () => [],
];

const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant('replace'), at: fc.nat(), with: fc.nat({ max: weird.length - 1 }) }),
  fc.record({ kind: fc.constant('anything'), at: fc.nat(), with: fc.anything({ withBoxedValues: true, withBigInt: true, withDate: true, withNullPrototype: true, withSparseArray: true, withTypedArray: true, maxDepth: 2 }) }),
  fc.record({ kind: fc.constant('delete'), at: fc.nat() }),
  fc.record({ kind: fc.constant('add'), at: fc.nat(), key: keyArb }),
  fc.record({ kind: fc.constant('reorder'), at: fc.nat() }),
  fc.record({ kind: fc.constant('cycle'), at: fc.nat() }),
  fc.record({ kind: fc.constant('getter'), at: fc.nat(), with: fc.nat({ max: weird.length - 1 }) }),
  fc.record({ kind: fc.constant('proxy'), at: fc.nat() }),
);

/** Applies a mutation to a clone of `base`; observable reads are pushed to `log`. */
function mutate(base, m, log) {
  const root = clone(base);
  const all = slots(root);
  const [holder, key] = all[m.at % all.length];
  switch (m.kind) {
    case 'replace':
      holder[key] = weird[m.with]();
      break;
    case 'anything':
      holder[key] = m.with;
      break;
    case 'delete':
      delete holder[key];
      break;
    case 'add':
      Object.defineProperty(holder, m.key, { value: 'added', enumerable: true, configurable: true, writable: true });
      break;
    case 'reorder': {
      const target = holder[key] !== null && typeof holder[key] === 'object' && !Array.isArray(holder[key]) ? holder[key] : root;
      const entries = Object.keys(target).map((k) => [k, target[k]]).reverse();
      for (const [k] of entries) delete target[k];
      for (const [k, v] of entries) Object.defineProperty(target, k, { value: v, enumerable: true, configurable: true, writable: true });
      break;
    }
    case 'cycle':
      holder[key] = root;
      break;
    case 'getter': {
      const v = weird[m.with]();
      Object.defineProperty(holder, key, {
        get() {
          log.push(`get ${key}`);
          return v;
        },
        enumerable: true,
        configurable: true,
      });
      break;
    }
    case 'proxy': {
      const v = holder[key];
      const target = v !== null && typeof v === 'object' ? v : { inner: v };
      holder[key] = new Proxy(target, {
        get(t, p, r) {
          log.push(`get ${String(p)}`);
          return Reflect.get(t, p, r);
        },
        ownKeys(t) {
          log.push('ownKeys');
          return Reflect.ownKeys(t);
        },
        getOwnPropertyDescriptor(t, p) {
          log.push(`gopd ${String(p)}`);
          return Reflect.getOwnPropertyDescriptor(t, p);
        },
        has(t, p) {
          log.push(`has ${String(p)}`);
          return Reflect.has(t, p);
        },
        getPrototypeOf(t) {
          log.push('getPrototypeOf');
          return Reflect.getPrototypeOf(t);
        },
      });
      break;
    }
  }
  return root;
}

/**
 * The serializer's answer for v, checked: not served or JSON.stringify's bytes; and what it plus the
 * caller's fallback observed (getter reads, traps) equals what JSON.stringify alone observes.
 */
function checkObserved(s, v, log, label) {
  log.length = 0;
  const bytes = attempt(s, v);
  let fallback;
  if (bytes === undefined) fallback = reference(v);
  const seen = log.slice();
  log.length = 0;
  const want = reference(v);
  const alone = log.slice();
  const got = bytes === undefined ? undefined : bytes.toString('utf8');
  if (got !== undefined) {
    assert.notEqual(want, THROWS, `${label}: served although JSON.stringify throws`);
    assert.ok(bytes.equals(Buffer.from(want)), `${label}: ${got} !== ${want}`);
  } else {
    assert.equal(fallback, want, `${label}: fallback`);
  }
  // Where JSON.stringify throws, the caller's retry may repeat reads the serializer made.
  if (want !== THROWS) assert.deepEqual(seen, alone, `${label}: observed reads and traps`);
  return got;
}

describe('ShapeSerializer: differential properties', () => {
  it('arbitrary objects, each shown repeatedly: not served, or JSON.stringify exactly', () => {
    let runs = 0;
    fc.assert(
      fc.property(
        fc.object({
          withBoxedValues: true,
          withBigInt: true,
          withDate: true,
          withMap: true,
          withSet: true,
          withNullPrototype: true,
          withSparseArray: true,
          withTypedArray: true,
          withObjectString: true,
          stringUnit: 'binary',
          maxDepth: 3,
        }),
        (v) => {
          runs++;
          const s = new ShapeSerializer({ warmup: 2 });
          for (let i = 0; i < 4; i++) check(s, v, `call ${i}`);
        },
      ),
      params(400),
    );
    assert.equal(runs >= 400, true);
  });

  it('JSON values in sensor-like records (fc.jsonValue members): served after warm-up, exactly', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue({ maxDepth: 2 }), { minLength: 6, maxLength: 6 }), (vals) => {
        const s = new ShapeSerializer();
        const make = () => ({ sensor: vals[0], seq: vals[1], value: vals[2], unit: vals[3], ok: vals[4], ts: vals[5] });
        served(s, make);
      }),
      params(200),
    );
  });

  it('a shape, conforming objects, then mutated ones: exact, observes what JSON.stringify observes, and conforming objects stay served', () => {
    let mutated = 0;
    let servedMutated = 0;
    fc.assert(
      fc.property(
        topShapeArb.chain((shape) =>
          fc.tuple(
            fc.constant(shape),
            fc.array(valueArb(shape), { minLength: 12, maxLength: 12 }),
            fc.array(mutationArb, { minLength: 1, maxLength: 8 }),
          ),
        ),
        ([shape, conforming, mutations]) => {
          const s = new ShapeSerializer();
          const log = [];
          const topHasToJSON = shape.fields.some(([k]) => k === 'toJSON');
          conforming.slice(0, 4).forEach((c, i) => check(s, c, `warm-up ${i}`));
          mutations.forEach((m, i) => {
            const v = mutate(conforming[i % conforming.length], m, log);
            mutated++;
            if (checkObserved(s, v, log, `mutation ${i} ${m.kind}`) !== undefined) servedMutated++;
            const c = conforming[4 + (i % 8)];
            const got = check(s, c, `conforming after mutation ${i}`);
            if (!topHasToJSON) assert.notEqual(got, undefined, `conforming object not served after mutation ${i}`);
          });
        },
      ),
      params(400),
    );
    // The mutated objects are not all simply refused: many are finished by the generic serialiser.
    assert.equal(servedMutated > mutated / 4, true, `${servedMutated} of ${mutated} mutated objects served`);
  });

  it('sequences of objects whose key set changes between calls (same keys, other orders, subsets)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(keyArb, { minLength: 1, maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(), fc.boolean(), fc.double()), { minLength: 20, maxLength: 60 }),
        (keys, steps) => {
          const s = new ShapeSerializer({ warmup: 2 });
          for (const [n, reverse, x] of steps) {
            let ks = keys.slice(0, 1 + (n % keys.length));
            if (reverse) ks = ks.reverse();
            check(s, Object.fromEntries(ks.map((k, i) => [k, i % 2 ? x : String(x)])));
          }
        },
      ),
      params(150),
    );
  });

  it('anything in sensor-like records shown many times (shapes compile): exact bytes, into one growing writer', () => {
    // Mostly the usual member types, so that the shape compiles and is served; now and then
    // anything at all (fc.anything: boxed values, BigInt, dates, sparse arrays, null prototypes,
    // lone surrogates), which the compiled code must hand on or decline.
    const usual = fc.oneof(
      fc.integer(),
      fc.integer({ min: -1e9, max: 1e9 }).map((n) => n / 100),
      fc.maxSafeInteger(),
      fc.double(),
      fc.string({ maxLength: 16 }),
      fc.string({ unit: 'binary', maxLength: 8 }),
      fc.boolean(),
      fc.constant(null),
    );
    const odd = fc.anything({ withBoxedValues: true, withBigInt: true, withDate: true, withNullPrototype: true, withSparseArray: true, withTypedArray: true, withObjectString: true, stringUnit: 'binary', maxDepth: 2 });
    const member = fc.oneof({ weight: 12, arbitrary: usual }, { weight: 1, arbitrary: odd });
    let calls = 0;
    let servedCalls = 0;
    fc.assert(
      fc.property(
        fc.uniqueArray(keyArb, { minLength: 1, maxLength: 6 }),
        fc.array(fc.array(member, { minLength: 6, maxLength: 6 }), { minLength: 40, maxLength: 40 }),
        (keys, rows) => {
          const s = new ShapeSerializer();
          // One writer for the whole sequence, as a sender keeps one: it starts small, keeps what
          // each write appended, and grows whenever it runs out.
          const w = new ByteWriter(1);
          w.bytes(PRELUDE);
          for (const row of rows) {
            const v = Object.fromEntries(keys.map((k, i) => [k, row[i]]));
            const start = w.pos;
            const got = attempt(s, v, w);
            const want = reference(v);
            calls++;
            if (got === undefined) {
              // The caller's fallback: JSON.stringify throws, or its text is appended instead.
              if (typeof want === 'string') w.string(want);
              continue;
            }
            servedCalls++;
            assert.notEqual(want, THROWS, 'served although JSON.stringify throws');
            assert.ok(got.equals(Buffer.from(want)), `${got.toString()} !== ${want}`);
            assert.equal(w.pos, start + got.length);
          }
          assert.ok(w.buf.subarray(0, PRELUDE.length).equals(PRELUDE));
        },
      ),
      params(300),
    );
    assert.ok(servedCalls > calls / 2, `${servedCalls} of ${calls} served`);
  });

  it('putInt32 and putShortNumber write Number.prototype.toString for every number they take', () => {
    const decimals = fc
      .tuple(fc.integer({ min: -2e9, max: 2e9 }), fc.integer({ min: 0, max: 9 }))
      .map(([n, d]) => n / 10 ** d);
    // Neighbours of short decimals, one or a few ulps away (must not be written as the decimal).
    const near = decimals.chain((x) =>
      fc.integer({ min: -3, max: 3 }).map((k) => {
        const b = new Float64Array([x]);
        const i = new BigInt64Array(b.buffer);
        i[0] += BigInt(k);
        return b[0];
      }),
    );
    const b = Buffer.alloc(64);
    let shortcuts = 0;
    /** Writes x at offset 3 (24 bytes of room, as the compiled code makes) and checks it. */
    const one = (x) => {
      b.fill(0x78);
      let end;
      if ((x | 0) === x) end = putInt32(b, 3, x | 0);
      else {
        end = putShortNumber(b, 3, x);
        if (end < 0) {
          // No shortcut: only where it is not a short decimal or a safe integer.
          const short = Math.abs(x) < 1e9 && Math.round(Math.abs(x) * 1e6) / 1e6 === Math.abs(x) && Math.abs(x) >= 1e-6;
          assert.ok(!short && !(Number.isInteger(x) && Math.abs(x) < 2 ** 53), `declined ${x}`);
          return;
        }
        shortcuts++;
      }
      assert.equal(b.toString('latin1', 3, end), String(x), String(x));
      assert.ok(end - 3 <= 24);
      assert.equal(b[2], 0x78);
      assert.equal(b[end], 0x78, `${x}: wrote past its end`);
    };
    const arb = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), decimals, near, fc.maxSafeInteger(), fc.integer());
    fc.assert(fc.property(arb, one), params(20000));
    const edges = [0, -0, 1e-6, -1e-6, 1e-7, 0.000001234, 999999999.999999, 1e9 - 1e-6, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 31 - 1, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 2 ** 53 + 2, 1e21, 1e21 - 65536, 5e-324, Number.MAX_VALUE, -Number.MAX_VALUE, 0.1 + 0.2, 1.005, 4.35, 1e15 + 0.3, 1733000000000, 1764081600123, 123456789.123456, 21.37, 48.2, -60, 1e9, 1000000000.5, 0.5, 10.000001];
    for (const x of edges) one(x);
    assert.ok(shortcuts > 5000, `${shortcuts} shortcuts`);
  });

  it('putAsciiString writes JSON.stringify of ASCII strings with nothing to escape, and declines the rest', () => {
    const b = Buffer.alloc(300);
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 100 }), fc.string({ unit: 'grapheme' }), fc.string({ maxLength: 200 })), (x) => {
        const end = putAsciiString(b, 5, x);
        const plain = /^[\x20\x21\x23-\x5b\x5d-\x7f]*$/.test(x);
        assert.equal(end >= 0, plain, JSON.stringify(x));
        if (plain) assert.equal(b.toString('latin1', 5, end), JSON.stringify(x));
      }),
      params(5000),
    );
  });
});

describe('ByteWriter', () => {
  it('grows without losing bytes, from any capacity, for bytes and strings of any size', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 40 })), { maxLength: 30 }),
        (initial, pieces) => {
          const w = new ByteWriter(initial);
          const want = [];
          for (const x of pieces) {
            if (typeof x === 'string') w.string(x);
            else w.bytes(x);
            want.push(Buffer.from(x));
          }
          assert.ok(w.buf.subarray(0, w.pos).equals(Buffer.concat(want)));
        },
      ),
      params(500),
    );
  });

  it('ensure makes room for n more bytes; shrink replaces a grown buffer', () => {
    const w = new ByteWriter(4);
    w.bytes(Uint8Array.of(1, 2, 3));
    w.ensure(100);
    assert.ok(w.buf.length >= 103);
    assert.deepEqual([...w.buf.subarray(0, 3)], [1, 2, 3]);
    const grown = w.buf;
    w.ensure(50);
    assert.equal(w.buf, grown, 'room enough: not replaced');
    w.pos = 0;
    w.shrink(1000);
    assert.equal(w.buf, grown, 'not beyond 1000: kept');
    w.shrink(16);
    assert.equal(w.buf.length, 16);
    w.string('\u00e9\u4e2d\ud83d\ude00');
    assert.equal(w.buf.toString('utf8', 0, w.pos), '\u00e9\u4e2d\ud83d\ude00');
  });
});

describe('ShapeSerializer: the fast path is taken', () => {
  it('serves flat and nested sensor payloads after warm-up, and counts them as hits', () => {
    const s = new ShapeSerializer();
    served(s, sensor, 'flat');
    served(s, nested, 'nested');
    const st = s.stats();
    assert.equal(st.shapes, 2);
    assert.equal(st.hits >= 8, true);
    assert.equal(st.deviations, 0);
  });

  /**
   * Writes `count` objects from make(i) into one writer reset at 64 KiB (as a sender batching
   * frames), checking each against JSON.stringify (called once per object, after write: it is
   * the caller's fallback when not served). Returns the share served after the first 16, and the
   * number served in all.
   */
  function servedRate(s, make, count) {
    const w = new ByteWriter(256);
    let hits = 0;
    let total = 0;
    for (let i = 0; i < count; i++) {
      const v = make(i);
      const start = w.pos;
      const ok = s.write(v, w);
      const want = JSON.stringify(v);
      if (ok) assert.ok(w.buf.subarray(start, w.pos).equals(Buffer.from(want)), `${i}: ${w.buf.toString('utf8', start, w.pos)} !== ${want}`);
      else {
        assert.equal(w.pos, start);
        w.string(want);
      }
      if (ok) total++;
      if (ok && i >= 16) hits++;
      if (w.pos >= 65536) w.pos = 0;
    }
    return { rate: hits / (count - 16), total };
  }

  it('a repeated sensor shape: after warm-up at least 99% of writes are served, exactly', () => {
    const site = ['living-room', 'kitchen', 'garage', 'attic'];
    const make = (i) => ({
      sensor: `temp-${site[i & 3]}-01`,
      seq: 100000 + i,
      value: 21.5 + (i % 50) / 10,
      unit: i % 97 === 0 ? 'degrés' : 'celsius',
      battery: 3.6 + (i % 20) / 100,
      rssi: -60 - (i % 30),
      ok: i % 7 !== 0,
      ts: 1733000000000 + i * 1000,
      pos: { lat: 45.4642 + i / 1e4, lon: 9.19 - i / 1e4 },
      tags: ['a', `b${i % 5}`],
    });
    const s = new ShapeSerializer();
    const { rate } = servedRate(s, make, 20000);
    assert.ok(rate >= 0.99, `served ${(rate * 100).toFixed(2)}%`);
    assert.equal(s.stats().shapes, 1);
  });

  it('getters run exactly once per write, and the objects carrying them are served', () => {
    let reads = 0;
    const make = (i) =>
      Object.defineProperties(
        { id: 'g' },
        {
          value: { get: () => (reads++, i / 4), enumerable: true },
          inner: { get: () => (reads++, { x: i }), enumerable: true },
        },
      );
    const s = new ShapeSerializer();
    const { rate, total } = servedRate(s, make, 2000);
    assert.ok(rate >= 0.99, `served ${(rate * 100).toFixed(2)}%`);
    // Two getters per object, each read once by JSON.stringify, and once more by a write that served.
    assert.equal(reads, 2000 * 2 + total * 2);
  });

  it('toJSON members (Date, a class, an own toJSON) are honoured, called once, and served', () => {
    let calls = 0;
    class Stamp {
      constructor(i) {
        this.i = i;
      }
      toJSON(key) {
        calls++;
        return `${key}@${this.i}`;
      }
    }
    const make = (i) => ({ at: new Date(1733000000000 + i), stamp: new Stamp(i), own: { toJSON: () => (calls++, [i]) }, n: i });
    const s = new ShapeSerializer();
    const { rate, total } = servedRate(s, make, 2000);
    assert.ok(rate >= 0.99, `served ${(rate * 100).toFixed(2)}%`);
    // Two toJSON per object, each called once by JSON.stringify, and once more by a write that served.
    assert.equal(calls, 2000 * 2 + total * 2);
    assert.equal(check(s, make(5)), '{"at":"2024-11-30T20:53:20.005Z","stamp":"stamp@5","own":[5],"n":5}');
  });

  it('non-ASCII strings in values and keys are written as UTF-8, served', () => {
    const values = ['é', 'Zürich', '中文测试', '\ud83d\ude00 ok', 'a\u2028b\u2029', '\u00ff\u0100', 'tab\there', 'quote"', 'x'.repeat(70) + 'é'];
    const make = (i) => ({ 'clé': values[i % values.length], 'naïve': [values[(i + 1) % values.length], i], ascii: 'plain' });
    const s = new ShapeSerializer();
    const { rate } = servedRate(s, make, 1000);
    assert.ok(rate >= 0.99, `served ${(rate * 100).toFixed(2)}%`);
  });

  it('declines while learning (warmup option), and arrays and empty objects at the top', () => {
    const s = new ShapeSerializer({ warmup: 3 });
    assert.equal(str(s, sensor()), undefined);
    assert.equal(str(s, sensor()), undefined);
    assert.equal(str(s, sensor()), undefined);
    assert.equal(str(s, sensor()), JSON.stringify(sensor()));
    // An array given Object.prototype passes a prototype check, but is still an array to JSON.stringify.
    assert.equal(str(s, [1, 2]), undefined);
    assert.equal(str(s, Object.setPrototypeOf([1, 2], Object.prototype)), undefined);
    assert.equal(str(s, {}), undefined);
  });
});

describe('ShapeSerializer: edge cases', () => {
  it('integer-like keys come first, ascending, as in Object.keys', () => {
    const s = new ShapeSerializer();
    const got = served(s, (i) => ({ b: i, 10: 'ten', a: 'x', 2: true, '-1': null, '01': 1, 4294967295: 2, 1: [i] }));
    assert.match(got, /^\{"1":\[\d\],"2":true,"10":"ten","b":/);
  });

  it('toJSON: Date and inherited toJSON nested, own toJSON member, and the key it receives', () => {
    const s = new ShapeSerializer();
    served(s, sensor);
    const keys = [];
    class Stamp {
      toJSON(k) {
        keys.push(k);
        return 'stamp';
      }
    }
    const v = { ...sensor(), ts: new Date(0) };
    assert.equal(check(s, v), JSON.stringify(v));
    const w = { ...sensor(), ts: new Stamp(), value: { toJSON: (k) => (keys.push(k), [k]) } };
    keys.length = 0;
    assert.notEqual(check(s, w), undefined);
    assert.deepEqual(keys, ['value', 'ts', 'value', 'ts']); // once by JSON.stringify, once served
    // In arrays the key is the index as a string.
    const n = nested();
    n.tags[1] = new Stamp();
    served(s, nested);
    keys.length = 0;
    assert.notEqual(check(s, n), undefined);
    assert.deepEqual(keys, ['1', '1']);
    // toJSON on the top object, own or inherited: left to JSON.stringify.
    assert.equal(str(s, { ...sensor(), toJSON: () => 1 }), undefined);
    assert.equal(str(s, Object.assign(new Stamp(), sensor())), undefined);
    // A toJSON returning undefined omits the member.
    const u = { ...sensor(), unit: { toJSON: () => undefined } };
    assert.equal(check(s, u), JSON.stringify(u));
  });

  it('getters are read exactly once, in JSON.stringify order, served or not', () => {
    const s = new ShapeSerializer();
    const reads = [];
    const make = (v) =>
      Object.defineProperties(
        {},
        {
          a: { get: () => (reads.push('a'), v), enumerable: true },
          b: { value: 2, enumerable: true },
          c: { get: () => (reads.push('c'), { x: v }), enumerable: true },
        },
      );
    for (let i = 0; i < 6; i++) {
      reads.length = 0;
      const v = make(i);
      const got = str(s, v) ?? JSON.stringify(v);
      assert.equal(got, `{"a":${i},"b":2,"c":{"x":${i}}}`);
      assert.deepEqual(reads, ['a', 'c']);
    }
    // Getters returning another type each call, and one that deletes a later member.
    reads.length = 0;
    const odd = make('str');
    assert.equal(str(s, odd), JSON.stringify(make('str')));
    assert.deepEqual(reads, ['a', 'c', 'a', 'c']);
    const deleting = { p: 1, q: 2, r: 3 };
    const makeDeleting = () => {
      const o = { p: 1, q: 2, r: 3 };
      Object.defineProperty(o, 'q', { get: () => (delete o.r, o.t = 9, 2), enumerable: true, configurable: true });
      return o;
    };
    // A toJSON getter on an object whose key list was compiled: run once, by JSON.stringify.
    served(s, sensor);
    class Late {
      get toJSON() {
        reads.push('toJSON');
        return (k) => `late:${k}`;
      }
    }
    for (const [v, want] of [
      [Object.defineProperty(sensor(), 'toJSON', { get: () => (reads.push('toJSON'), undefined), enumerable: false }), JSON.stringify(sensor())],
      [Object.assign(new Late(), sensor()), '"late:"'],
    ]) {
      reads.length = 0;
      assert.equal(str(s, v) ?? JSON.stringify(v), want);
      assert.deepEqual(reads, ['toJSON']);
    }
    served(s, () => ({ ...deleting }));
    assert.equal(str(s, makeDeleting()), JSON.stringify(makeDeleting()));
    assert.equal(JSON.stringify(makeDeleting()), '{"p":1,"q":2}');
  });

  it('-0, NaN, Infinity and large or fractional numbers, in members and arrays', () => {
    const s = new ShapeSerializer();
    served(s, (i) => ({ n: i / 4, arr: [i, i / 3] }));
    for (const x of [-0, NaN, Infinity, -Infinity, 1e21, 1e-7, 5e-324, 2 ** 53, -1733000000000.5, 0.1 + 0.2]) {
      const v = { n: x, arr: [x, -x, x * 3] };
      assert.equal(str(s, v), JSON.stringify(v), String(x));
    }
  });

  it('strings: every escape, lone and paired surrogates, in values and keys', () => {
    const s = new ShapeSerializer();
    let all = '';
    for (let c = 0; c < 0x20; c++) all += String.fromCharCode(c);
    all += '"\\/\u007f\u2028\u2029\ud800x\udfffy\ud83d\ude00\udbff\udc00z\ud800';
    const key = 'k\n"\ud800';
    served(s, (i) => ({ [key]: `v${i}`, s: 'plain' }));
    for (const text of [all, all.repeat(5), '\ud800', '\udc00', 'a"b', 'back\\slash', 'x'.repeat(100) + '\u0001']) {
      const v = { [key]: text, s: text };
      assert.equal(str(s, v), JSON.stringify(v));
    }
  });

  it('nested arrays and objects, and nested objects of another shape', () => {
    const s = new ShapeSerializer();
    const make = (i) => ({ m: [[i, [i + 1]], [], [{ a: i }]], o: { p: { q: { r: { z: [i] } } } } });
    served(s, make);
    const v = make(1);
    v.o.p.q = { other: [1, { a: 'b' }] };
    v.m[2][0] = { b: 1, a: 2 };
    assert.equal(check(s, v), JSON.stringify(v));
  });

  it('undefined, function and symbol members are omitted (first, middle, last) and null in arrays', () => {
    const s = new ShapeSerializer();
    served(s, sensor);
    for (const x of [undefined, () => 1, Symbol('s')]) {
      for (const k of ['sensor', 'value', 'ts']) {
        const v = { ...sensor(), [k]: x };
        assert.equal(check(s, v), JSON.stringify(v), `${String(x)} at ${k}`);
      }
    }
    served(s, nested);
    const n = nested();
    n.tags = [undefined, () => 1, Symbol('s'), 'x'];
    assert.equal(check(s, n), '{"id":"dev-7","readings":{"t":21.5,"h":40.25,"p":1013.2},"tags":[null,null,null,"x"]}');
  });

  it('a nested object or array whose toJSON gives undefined: the member is omitted (first, middle, last), the element null', () => {
    const s = new ShapeSerializer();
    const make = (i) => ({ a: { x: i }, b: [i, 'b'], c: { y: [i] }, d: [{ z: i }] });
    served(s, make);
    const gone = () => ({ toJSON: () => undefined });
    const goneArray = () => Object.assign([1, 2], { toJSON: () => undefined });
    for (const k of ['a', 'b', 'c', 'd']) {
      for (const x of [gone(), goneArray()]) {
        const v = { ...make(3), [k]: x };
        assert.equal(check(s, v), JSON.stringify(v), `omitted at ${k}`);
      }
    }
    // All of them omitted: an empty object.
    assert.equal(check(s, { a: gone(), b: goneArray(), c: gone(), d: goneArray() }), '{}');
    // Inside arrays: null in place of the element.
    const v = { ...make(4), d: [{ z: 1 }, gone(), { z: 2 }, goneArray()], b: [goneArray(), 1] };
    assert.equal(check(s, v), JSON.stringify(v));
    assert.match(JSON.stringify(v), /"d":\[\{"z":1\},null,\{"z":2\},null\]/);
  });

  it('symbol keys and non-enumerable properties are ignored', () => {
    const s = new ShapeSerializer();
    const make = (i) => Object.defineProperty({ a: i, [Symbol('k')]: 'sym', b: 'x' }, 'hidden', { value: 1, enumerable: false });
    assert.equal(served(s, make), '{"a":7,"b":"x"}');
    // A non-enumerable toJSON on the top object is still a toJSON: left to JSON.stringify.
    const t = Object.defineProperty({ a: 1, b: 'x' }, 'toJSON', { value: () => 'T', enumerable: false });
    assert.equal(str(s, t), undefined);
  });

  it('class instances and null-prototype objects, nested and at the top', () => {
    class Point {
      constructor(i) {
        this.x = i;
        this.y = -i;
      }
      get norm() {
        return 1;
      }
    }
    const s = new ShapeSerializer();
    served(s, (i) => new Point(i));
    served(s, (i) => Object.assign(Object.create(null), { np: i, inner: Object.assign(Object.create(null), { z: i }) }));
    served(s, (i) => ({ at: new Point(i), list: [new Point(i)] }));
    const v = { at: Object.assign(Object.create(null), { x: 1, y: 2 }), list: [Object.create(null)] };
    assert.equal(check(s, v), JSON.stringify(v));
  });

  it('proxies: at the top left untouched; nested, the same traps in the same order as JSON.stringify', () => {
    const s = new ShapeSerializer();
    served(s, nested);
    const log = [];
    const logging = (target) =>
      new Proxy(target, {
        get: (t, p, r) => (log.push(`get ${String(p)}`), Reflect.get(t, p, r)),
        ownKeys: (t) => (log.push('ownKeys'), Reflect.ownKeys(t)),
        getOwnPropertyDescriptor: (t, p) => (log.push(`gopd ${String(p)}`), Reflect.getOwnPropertyDescriptor(t, p)),
        has: (t, p) => (log.push(`has ${String(p)}`), Reflect.has(t, p)),
        getPrototypeOf: (t) => (log.push('getPrototypeOf'), Reflect.getPrototypeOf(t)),
      });
    assert.equal(str(s, logging(nested())), undefined);
    assert.deepEqual(log, []);
    const revoked = Proxy.revocable([], {});
    revoked.revoke();
    assert.equal(str(s, revoked.proxy), undefined);
    for (const v of [
      { ...nested(), readings: logging({ t: 1, h: 2, p: 3 }) },
      { ...nested(), readings: logging({ other: 1 }) },
      { ...nested(), tags: logging(['a', 'b']) },
      { ...nested(), tags: logging([{ x: 1 }]) },
    ]) {
      log.length = 0;
      const got = str(s, v);
      const mine = log.slice();
      log.length = 0;
      assert.equal(got, JSON.stringify(v));
      assert.deepEqual(mine, log);
    }
  });

  it('a proxy on the prototype chain: untouched by a miss, and a toJSON only its get trap reveals is honoured', () => {
    const s = new ShapeSerializer();
    served(s, sensor);
    const log = [];
    const sneaky = new Proxy(
      {},
      {
        has: (t, p) => (log.push(`has ${String(p)}`), false),
        get: (t, p) => (log.push(`get ${String(p)}`), p === 'toJSON' ? () => 'from get' : undefined),
        getPrototypeOf: () => (log.push('getPrototypeOf'), null),
      },
    );
    for (const v of [Object.assign(Object.create(sneaky), sensor()), Object.assign(Object.create(Object.create(sneaky)), sensor())]) {
      log.length = 0;
      const got = str(s, v);
      assert.deepEqual(log, []);
      assert.equal(got ?? JSON.stringify(v), '"from get"');
    }
    // Learning such objects touches no trap either.
    const t = new ShapeSerializer();
    log.length = 0;
    for (let i = 0; i < 8; i++) assert.equal(str(t, Object.assign(Object.create(sneaky), { a: i })), undefined);
    assert.deepEqual(log, []);
  });

  it('BigInt anywhere: not served (JSON.stringify throws); a BigInt.prototype.toJSON is honoured', () => {
    const s = new ShapeSerializer();
    served(s, nested);
    for (const v of [{ ...nested(), id: 1n }, { ...nested(), readings: { t: 1, h: 2n, p: 3 } }, { ...nested(), tags: ['a', Object(2n)] }]) {
      assert.equal(str(s, v), undefined);
      assert.throws(() => JSON.stringify(v), TypeError);
    }
    BigInt.prototype.toJSON = function () {
      return `${this}n`;
    };
    try {
      const v = { ...nested(), id: 5n, tags: [6n] };
      assert.equal(check(s, v), JSON.stringify(v));
    } finally {
      delete BigInt.prototype.toJSON;
    }
  });

  it('cycles: not served; an object repeated without a cycle is served', () => {
    const s = new ShapeSerializer();
    served(s, nested);
    const self = nested();
    self.readings = self;
    const viaArray = nested();
    viaArray.tags = [viaArray];
    const deep = nested();
    deep.readings = { t: 1, h: { back: deep }, p: 3 };
    const sameShapeLoop = nested();
    sameShapeLoop.readings = { t: 1, h: 2, p: 3 };
    sameShapeLoop.readings.p = sameShapeLoop.readings;
    for (const v of [self, viaArray, deep, sameShapeLoop]) {
      assert.equal(str(s, v), undefined);
      assert.throws(() => JSON.stringify(v), TypeError);
    }
    const shared = { t: 1, h: 2, p: 3 };
    const dag = { ...nested(), readings: shared, tags: [shared, shared] };
    assert.equal(check(s, dag), JSON.stringify(dag));
  });

  it('the same key set in another order is another shape; so is a changed key set', () => {
    const s = new ShapeSerializer();
    served(s, sensor);
    const reordered = (i) => {
      const o = sensor(i);
      return Object.fromEntries(Object.keys(o).reverse().map((k) => [k, o[k]]));
    };
    assert.equal(check(s, reordered(0)), undefined);
    served(s, reordered);
    const fewer = sensor();
    delete fewer.ok;
    assert.equal(check(s, fewer), undefined);
    assert.equal(check(s, { ...sensor(), extra: 1 }), undefined);
    assert.equal(check(s, sensor(5)), JSON.stringify(sensor(5)));
  });

  it('sparse arrays (holes are null; an inherited index is read as JSON.stringify reads it)', () => {
    const s = new ShapeSerializer();
    served(s, nested);
    const n = nested();
    n.tags = ['a', , 'c']; // eslint-disable-line no-sparse-arrays
    assert.equal(check(s, n), JSON.stringify(n));
    n.tags = new Array(5);
    assert.equal(check(s, n), '{"id":"dev-7","readings":{"t":21.5,"h":40.25,"p":1013.2},"tags":[null,null,null,null,null]}');
    Array.prototype[1] = 'inherited';
    try {
      n.tags = ['a', , 'c']; // eslint-disable-line no-sparse-arrays
      assert.equal(check(s, n), JSON.stringify(n));
      assert.match(JSON.stringify(n), /inherited/);
    } finally {
      delete Array.prototype[1];
    }
  });

  it('boxed primitives are unboxed (valueOf and toString as JSON.stringify calls them)', () => {
    const s = new ShapeSerializer();
    served(s, sensor);
    const tricky = new Number(1);
    tricky.valueOf = () => 42;
    const trickyString = new String('s');
    trickyString.toString = () => 'from toString';
    [new Number(1), new Number(NaN), new String('a"b'), new Boolean(false), tricky, trickyString, Object(Symbol('x'))].forEach((x, i) => {
      const v = { ...sensor(), value: x, unit: [x] };
      assert.equal(check(s, v), JSON.stringify(v), `boxed #${i}`);
    });
    // A boxed primitive carrying exactly a learned shape's keys is still a primitive to JSON.stringify.
    const boxed = Object.assign(new Number(7), sensor());
    assert.equal(str(s, boxed), undefined);
    const disguised = Object.setPrototypeOf(Object.assign(new Number(7), sensor()), Object.prototype);
    assert.equal(check(s, disguised), undefined);
    // (ToNumber then finds Object.prototype's valueOf and toString: "[object Number]", NaN.)
    assert.equal(JSON.stringify(disguised), 'null');
    const nestedDisguised = { ...nested(), readings: Object.setPrototypeOf(Object.assign(new String('ab'), { t: 1, h: 2, p: 3 }), Object.prototype) };
    served(s, nested);
    assert.equal(check(s, nestedDisguised), JSON.stringify(nestedDisguised));
  });

  it('very deep nesting: not served or exact, never a throw', () => {
    const s = new ShapeSerializer();
    served(s, sensor);
    for (const depth of [50, 150, 250, 1000, 100000]) {
      let deepArray = 1;
      let deepObject = { end: true };
      for (let i = 0; i < depth; i++) {
        deepArray = [deepArray];
        deepObject = { d: deepObject };
      }
      check(s, { ...sensor(), value: deepArray }, `array ${depth}`);
      check(s, { ...sensor(), value: deepObject }, `object ${depth}`);
    }
    const shallow = { ...sensor(), value: [[[[[[1]]]]]] };
    assert.equal(check(s, shallow), JSON.stringify(shallow));
  });

  it('exceptions from getters, toJSON or traps: not served, never a throw', () => {
    const s = new ShapeSerializer();
    served(s, nested);
    const boom = () => {
      throw new Error('boom');
    };
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    for (const bad of [
      Object.defineProperty({}, 'x', { get: boom, enumerable: true }),
      { toJSON: boom },
      new Proxy({}, { ownKeys: boom }),
      revoked.proxy,
    ]) {
      const v = { ...nested(), readings: bad };
      assert.equal(str(s, v), undefined);
      assert.throws(() => JSON.stringify(v));
    }
  });
});

describe('ShapeSerializer: bounded and cheap when it cannot help', () => {
  it('objects that all differ: nothing compiled, then backing off', () => {
    const s = new ShapeSerializer();
    for (let i = 0; i < 5000; i++) assert.equal(str(s, { [`k${i}`]: i, v: 1 }), undefined);
    const st = s.stats();
    assert.equal(st.shapes, 0);
    assert.equal(st.compiles, 0);
    assert.equal(st.skipped > 3000, true, `skipped ${st.skipped}`);
  });

  it('many shapes: at most maxShapes compiled at once, and compilations are rationed', () => {
    const s = new ShapeSerializer({ maxShapes: 4 });
    for (let round = 0; round < 200; round++) {
      for (let rep = 0; rep < 5; rep++) check(s, { [`shape${round}`]: rep, v: 'x' });
    }
    const st = s.stats();
    assert.equal(st.shapes <= 4, true);
    assert.equal(st.compiles <= 40, true, `compiles ${st.compiles}`);
  });

  it('a shape whose member types keep changing is recompiled with the wider profile', () => {
    const s = new ShapeSerializer();
    served(s, (i) => ({ a: i, b: 'x' }));
    for (let i = 0; i < 2000; i++) check(s, { a: i % 2 ? i : `s${i}`, b: i % 3 ? 'x' : null });
    const before = s.stats();
    assert.equal(before.compiles >= 2, true, `compiles ${before.compiles}`);
    for (let i = 0; i < 1000; i++) check(s, { a: i % 2 ? i : `s${i}`, b: i % 3 ? 'x' : null });
    const after = s.stats();
    assert.equal(after.hits - before.hits > 900, true, `hits ${after.hits - before.hits}`);
    assert.equal(after.deviations - before.deviations < 100, true, `deviations ${after.deviations - before.deviations}`);
  });

  it('a shape whose numbers are mostly full-precision doubles is dropped and left to JSON.stringify', () => {
    const s = new ShapeSerializer();
    let x = 1;
    const make = () => ({ id: 'a', samples: Array.from({ length: 20 }, () => (x = (x * 48271) % 2147483647) / 7) });
    served(s, make);
    for (let i = 0; i < 600; i++) check(s, make());
    const st = s.stats();
    assert.equal(st.dropped >= 1, true, `dropped ${st.dropped}`);
    for (let i = 0; i < 50; i++) assert.equal(check(s, make()), undefined);
    // Short decimals and large integers do not count against a shape.
    const t = new ShapeSerializer();
    served(t, (i) => ({ id: 'b', samples: Array.from({ length: 20 }, (_, j) => (i * 20 + j) / 100), ts: 1733000000000 + i }));
    for (let i = 0; i < 600; i++) check(t, { id: 'b', samples: Array.from({ length: 20 }, (_, j) => (i * 7 + j) / 100), ts: 1733000000000 + i });
    assert.equal(t.stats().dropped, 0);
    assert.notEqual(check(t, { id: 'b', samples: [1.5], ts: 2 ** 40 }), undefined);
  });

  it('a recurring shape is learned among a stream of one-off shapes', () => {
    // 8 one-off key lists between sightings: replacing candidates in turn would forget the
    // recurring one (16 remembered) before its 4th sighting.
    const s = new ShapeSerializer();
    let first = -1;
    for (let i = 0; i < 20; i++) {
      for (let j = 0; j < 8; j++) check(s, { [`once${i}_${j}`]: j, v: 1 });
      if (check(s, sensor(i)) !== undefined && first < 0) first = i;
    }
    assert.equal(s.stats().compiles, 1);
    assert.equal(first, 4, 'first served at its 5th sighting');
  });

  it('a new recurring shape is still learned while one-off objects churn (learning then samples misses)', () => {
    const s = new ShapeSerializer();
    let i = 0;
    const step = (second) => {
      check(s, { [`once${i++}`]: 1, v: 2 });
      check(s, sensor(i));
      return second ? check(s, nested(i)) : undefined;
    };
    for (let k = 0; k < 400; k++) step(false); // sensor served, one-offs churning
    // Sightings examined (not skipped while backing off) until the nested shape is served.
    let examined = 0;
    for (let k = 0; k < 2000; k++) {
      const skipped = s.stats().skipped;
      const got = step(true);
      if (got !== undefined) break;
      if (s.stats().skipped === skipped) examined++;
    }
    assert.equal(examined > 4 && examined < 64, true, `nested served after ${examined} examined sightings`);
  });

  it('without code generation (--disallow-code-generation-from-strings) it declines everything', () => {
    const script = `
      const { ShapeSerializer } = require(${JSON.stringify(require.resolve('../dist/shape-serializer.js'))});
      const { ByteWriter } = require(${JSON.stringify(require.resolve('../dist/byte-writer.js'))});
      const s = new ShapeSerializer();
      const w = new ByteWriter(64);
      let served = 0;
      for (let i = 0; i < 20; i++) if (s.write({ a: i }, w) || w.pos !== 0) served++;
      console.log(JSON.stringify({ served, disabled: s.stats().disabled }));`;
    const r = spawnSync(process.execPath, ['--disallow-code-generation-from-strings', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { served: 0, disabled: true });
  });
});
