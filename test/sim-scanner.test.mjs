// The simulator's telemetry fast path (src/sim/scanner.ts) on its own: what isCertainTelemetry
// accepts without JSON.parse, what it leaves to the full path, and property-based differential
// checks against JSON.parse and against the full path's rules. fast-check prints the seed of a
// failure; IOTTLY_SCANNER_SEED=<seed> replays it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import fc from 'fast-check';

const require = createRequire(import.meta.url);
const { isCertainTelemetry, scanValue, MAX_SCAN_DEPTH } = require('../dist/sim/scanner.js');
const { AgentSimulator } = require('../dist/sim/index.js');

const FC = process.env.IOTTLY_SCANNER_SEED ? { seed: Number(process.env.IOTTLY_SCANNER_SEED) } : {};

const certain = (text) => {
  const b = Buffer.from(text);
  return isCertainTelemetry(b, 0, b.length);
};

const JSON_WS = new Set([' ', '\t', '\r', '\n']);

/** The scanner's verdict on a whole text: one value, with only JSON whitespace around it. */
function scannerAccepts(text) {
  const b = Buffer.from(text);
  let p = 0;
  while (p < b.length && JSON_WS.has(String.fromCharCode(b[p]))) p++;
  const e = scanValue(b, p, b.length, 0);
  if (e < 0) return false;
  for (let q = e; q < b.length; q++) if (!JSON_WS.has(String.fromCharCode(b[q]))) return false;
  return true;
}

function parses(text) {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const isPlainObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * How the simulator's full path (AgentSimulator handleFrame/handleData) judges one frame, reduced
 * to "counted as telemetry or not". A test below checks this against a real simulator.
 */
function fullPathVerdict(text) {
  let f;
  try {
    f = JSON.parse(text);
  } catch {
    return 'invalid JSON';
  }
  if (!isPlainObject(f)) return 'not a JSON object';
  if (f.data === undefined || f.signal !== undefined) return 'not data';
  const d = f.data;
  if (!isPlainObject(d)) return 'data is not an object';
  if (!isPlainObject(d.sdkclient) || typeof d.sdkclient.name !== 'string') return 'no sdkclient.name string';
  if (!isPlainObject(d.payload)) return 'payload is not an object';
  if (d.channel !== undefined && typeof d.channel !== 'string') return 'channel is not a string';
  return 'telemetry';
}

/** Nesting of arrays and objects: 0 for a scalar, 1 for {} or []. */
function nesting(v) {
  if (typeof v !== 'object' || v === null) return 0;
  let inner = 0;
  for (const x of Object.values(v)) inner = Math.max(inner, nesting(x));
  return 1 + inner;
}

const frame = (name, payload, channel) => ({
  data: channel === undefined ? { sdkclient: { name }, payload } : { sdkclient: { name }, payload, channel },
});
const TELEMETRY = JSON.stringify(frame('app', { t: 21.5 }));
const withPayload = (payloadText) => `{"data":{"sdkclient":{"name":"app"},"payload":{"v":${payloadText}}}}`;

// ---- examples -------------------------------------------------------------------------------

test('telemetry as the SDK writes it is certain, with and without a channel', () => {
  assert.equal(certain(TELEMETRY), true);
  assert.equal(certain(JSON.stringify(frame('app', {}, 'ch'))), true);
  assert.equal(certain(JSON.stringify(frame('', { a: [1, { b: null }], s: 'x' }, ''))), true);
  // member order inside data and sdkclient does not matter
  assert.equal(certain('{"data":{"channel":"c","payload":{},"sdkclient":{"name":"n"}}}'), true);
});

test('JSON whitespace (space, tab, CR, LF) is accepted between any two tokens', () => {
  const spaced = ' \t{ "data" :\r\n{\t"sdkclient" : { "name" : "a" } ,"payload":{ "x" : [ 1 , true ] } , "channel" : "c" }\n}\r ';
  assert.ok(parses(spaced));
  assert.equal(certain(spaced), true);
  assert.equal(certain(JSON.stringify(frame('a', { x: [1, { y: 2 }] }, 'c'), null, '\t')), true);
});

test('whitespace JSON does not allow is refused, as JSON.parse refuses it', () => {
  for (const ws of ['\v', '\f', '\u00a0', '\ufeff', '\u2028']) {
    for (const text of [`${ws}${TELEMETRY}`, `${TELEMETRY}${ws}`, TELEMETRY.replace(':{"t"', `:${ws}{"t"`)]) {
      assert.equal(parses(text), false, JSON.stringify(text));
      assert.equal(certain(text), false, JSON.stringify(text));
    }
  }
});

test('numbers in every JSON form are accepted', () => {
  const numbers = ['0', '-0', '7', '-7', '1234567890', '0.5', '-0.5', '10.25', '1e5', '1E5', '1e+5', '1e-5', '1E-05', '-1.5e+300', '0e0', '0.0e-0', '123456789012345678901234567890'];
  for (const n of numbers) {
    assert.equal(certain(withPayload(n)), true, n);
    assert.equal(scanValue(Buffer.from(n), 0, n.length, 0), n.length, n);
  }
});

test('what is not a JSON number is refused, as JSON.parse refuses it', () => {
  const bad = ['01', '-01', '00', '1.', '.5', '-.5', '+1', '-', '1e', '1e+', '1E-', '1.e5', '0x10', 'NaN', 'Infinity', '-Infinity', '1_000', '- 1', '1.5.2', '1e5e5'];
  for (const n of bad) {
    assert.equal(parses(withPayload(n)), false, n);
    assert.equal(certain(withPayload(n)), false, n);
  }
});

test('escapes in strings are accepted; malformed escapes and raw control characters are not', () => {
  const good = ['"a\\"b"', '"\\\\"', '"\\/"', '"\\b\\f\\n\\r\\t"', '"\\u00e9\\u00E9"', '"\\uD83D\\uDE80"', '"\\ud800"', '"é漢🚀"', '"\u2028\u007f"'];
  for (const s of good) {
    assert.equal(certain(`{"data":{"sdkclient":{"name":${s}},"payload":{${s}:${s}},"channel":${s}}}`), true, s);
  }
  const bad = ['"\\x41"', '"\\a"', '"\\U00e9"', '"\\u00e"', '"\\u00eg"', '"\\u"', '"\\', '"\t"', '"\u0001"', '"\u001f"', '"\\\u0000"', '"abc'];
  for (const s of bad) {
    const text = `{"data":{"sdkclient":{"name":"a"},"payload":{"k":${s}}}}`;
    assert.equal(parses(text), false, s);
    assert.equal(certain(text), false, s);
  }
});

test('a \\u escape needs four hex digits; control bytes in their place are refused', () => {
  // Bytes 0x10-0x19 OR 0x20 give the ASCII digits '0'-'9', so a case-folding check took them for hex.
  for (const bad of ['\u0010', '\u0015', '\u0019', 'G', 'g', '@', '`', ' ', '\u0000']) {
    for (const esc of [`\\u${bad}000`, `\\u0${bad}00`, `\\u00${bad}0`, `\\u000${bad}`]) {
      const s = `"${esc}"`;
      assert.equal(parses(s), false, JSON.stringify(s));
      assert.equal(scanValue(Buffer.from(s), 0, Buffer.byteLength(s), 0), -1, JSON.stringify(s));
      assert.equal(certain(`{"data":{"sdkclient":{"name":${s}},"payload":{}}}`), false, JSON.stringify(s));
    }
  }
});

test('keys written with escapes go to the full path, even when they decode to a known key', () => {
  const escapedKeys = [
    '{"d\\u0061ta":{"sdkclient":{"name":"a"},"payload":{}}}',
    '{"data":{"sdk\\u0063lient":{"name":"a"},"payload":{}}}',
    '{"data":{"sdkclient":{"name":"a"},"p\\u0061yload":{}}}',
    '{"data":{"sdkclient":{"n\\u0061me":"a"},"payload":{}}}',
    '{"data":{"sdkclient":{"name":"a"},"payload":{},"ch\\u0061nnel":5}}',
    // an unknown key with an escape is refused too: it might decode to a known one
    '{"data":{"sdkclient":{"name":"a"},"payload":{},"x\\n":1}}',
    '{"data":{"sdkclient":{"name":"a","x\\"y":1},"payload":{}}}',
  ];
  for (const text of escapedKeys) {
    assert.ok(parses(text), text);
    assert.equal(certain(text), false, text);
  }
  // the full path decodes the keys: only the escaped channel (a number) is invalid there
  assert.deepEqual(
    escapedKeys.map(fullPathVerdict),
    ['telemetry', 'telemetry', 'telemetry', 'telemetry', 'channel is not a string', 'telemetry', 'telemetry'],
  );
  // escapes inside payload keys are fine: only the payload's being an object matters
  assert.equal(certain('{"data":{"sdkclient":{"name":"a"},"payload":{"n\\u0061me":1,"\\"":2}}}'), true);
});

test('a repeated data, sdkclient, name, payload or channel member goes to the full path', () => {
  for (const text of [
    '{"data":{"sdkclient":{"name":"a"},"payload":{}},"data":{"sdkclient":{"name":"a"},"payload":{}}}',
    '{"data":{"sdkclient":{"name":"a"},"sdkclient":{"name":"b"},"payload":{}}}',
    '{"data":{"sdkclient":{"name":"a","name":"b"},"payload":{}}}',
    '{"data":{"sdkclient":{"name":"a"},"payload":{},"payload":{"x":1}}}',
    '{"data":{"sdkclient":{"name":"a"},"payload":{},"channel":"c","channel":"d"}}',
  ]) {
    assert.equal(fullPathVerdict(text), 'telemetry', text);
    assert.equal(certain(text), false, text);
  }
  // a repeated key inside the payload is JSON.parse's business, and harmless
  assert.equal(certain('{"data":{"sdkclient":{"name":"a"},"payload":{"k":1,"k":2}}}'), true);
});

test('wrong or missing keys are not certain', () => {
  for (const text of [
    '{"Data":{"sdkclient":{"name":"a"},"payload":{}}}',
    '{"data ":{"sdkclient":{"name":"a"},"payload":{}}}',
    '{"dat":{"sdkclient":{"name":"a"},"payload":{}}}',
    '{"data":{"sdkClient":{"name":"a"},"payload":{}}}',
    '{"data":{"sdkclient":{"Name":"a"},"payload":{}}}',
    '{"data":{"sdkclient":{"name":"a"},"Payload":{}}}',
    '{"data":{"sdkclient":{"name":"a"}}}',
    '{"data":{"payload":{}}}',
    '{"data":{"sdkclient":{},"payload":{}}}',
    '{"data":{}}',
    '{"signal":{"sdkclient":{"name":"a","status":"connected","version":"1.3.0"}}}',
    '{"signal":{"sdkclient":{"name":"a"},"payload":{}}}',
    '{}',
  ]) {
    assert.notEqual(fullPathVerdict(text), 'telemetry', text);
    assert.equal(certain(text), false, text);
  }
});

test('unknown members of data and sdkclient are skipped; any other top-level member is not', () => {
  for (const text of [
    '{"data":{"sdkclient":{"name":"a"},"payload":{},"extra":[1,{"payload":5}]}}',
    '{"data":{"x":null,"sdkclient":{"version":"1.3.0","name":"a","z":{"y":[]}},"payload":{}}}',
    '{"data":{"sdkclient":{"name":"a"},"signal":1,"payload":{}}}',
  ]) {
    assert.equal(fullPathVerdict(text), 'telemetry', text);
    assert.equal(certain(text), true, text);
  }
  for (const text of [
    '{"data":{"sdkclient":{"name":"a"},"payload":{}},"extra":1}',
    '{"extra":1,"data":{"sdkclient":{"name":"a"},"payload":{}}}',
    '{"data":{"sdkclient":{"name":"a"},"payload":{}},"signal":{}}',
  ]) {
    assert.equal(certain(text), false, text);
  }
  // an unknown member must still be valid JSON
  assert.equal(certain('{"data":{"sdkclient":{"name":"a"},"payload":{},"extra":tru}}'), false);
  assert.equal(certain('{"data":{"sdkclient":{"name":"a","v":[1,]},"payload":{}}}'), false);
});

test('non-object payloads, data or sdkclient and non-string names or channels are not certain', () => {
  const others = ['[]', '[{}]', '"{}"', '1', 'null', 'true', 'false'];
  const cases = [];
  for (const v of others) {
    cases.push(`{"data":{"sdkclient":{"name":"a"},"payload":${v}}}`);
    cases.push(`{"data":{"sdkclient":${v},"payload":{}}}`);
    cases.push(`{"data":${v}}`);
    cases.push(`{"data":{"sdkclient":{"name":"a"},"payload":{},"channel":${v === '"{}"' ? '{}' : v}}}`);
    if (v !== '"{}"') cases.push(`{"data":{"sdkclient":{"name":${v}},"payload":{}}}`);
  }
  cases.push('{"data":{"sdkclient":{"name":{}},"payload":{}}}');
  for (const text of cases) {
    assert.ok(parses(text), text);
    assert.notEqual(fullPathVerdict(text), 'telemetry', text);
    assert.equal(certain(text), false, text);
  }
});

test('frames that are not one JSON object are not certain', () => {
  for (const text of ['', ' ', '\r\n\t', 'null', '[]', '[{"data":{}}]', '"data"', '42', 'true', `${TELEMETRY}x`, `${TELEMETRY}${TELEMETRY}`, `${TELEMETRY},`, `${TELEMETRY}}`, `x${TELEMETRY}`]) {
    assert.equal(certain(text), false, JSON.stringify(text));
  }
});

test(`nesting up to MAX_SCAN_DEPTH (${MAX_SCAN_DEPTH}) below the frame is scanned; deeper frames go to the full path`, () => {
  // The frame is depth 0, data 1, the payload 2: a frame of MAX_SCAN_DEPTH + 1 nested containers is
  // the deepest the scanner follows.
  const nested = (levels) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
  const inPayload = (levels) => `{"data":{"sdkclient":{"name":"a"},"payload":{"v":${nested(levels)}}}}`;
  const deepest = MAX_SCAN_DEPTH + 1 - 3;
  assert.equal(nesting(JSON.parse(inPayload(deepest))), MAX_SCAN_DEPTH + 1);
  assert.equal(certain(inPayload(deepest)), true);
  assert.equal(fullPathVerdict(inPayload(deepest + 1)), 'telemetry');
  assert.equal(certain(inPayload(deepest + 1)), false);
  assert.equal(certain(inPayload(1000)), false);
  // the same limit applies to unknown members of data and sdkclient
  assert.equal(certain(`{"data":{"sdkclient":{"name":"a","x":${nested(deepest)}},"payload":{}}}`), true);
  assert.equal(certain(`{"data":{"sdkclient":{"name":"a","x":${nested(deepest + 1)}},"payload":{}}}`), false);
  assert.equal(certain(`{"data":{"sdkclient":{"name":"a"},"payload":{},"x":${nested(deepest + 1)}}}`), true);
  assert.equal(certain(`{"data":{"sdkclient":{"name":"a"},"payload":{},"x":${nested(deepest + 2)}}}`), false);
  // scanValue on its own: depth 0 at the top
  const top = (levels) => Buffer.from(nested(levels));
  assert.equal(scanValue(top(MAX_SCAN_DEPTH + 1), 0, 2 * (MAX_SCAN_DEPTH + 1), 0), 2 * (MAX_SCAN_DEPTH + 1));
  assert.equal(scanValue(top(MAX_SCAN_DEPTH + 2), 0, 2 * (MAX_SCAN_DEPTH + 2), 0), -1);
  // a deep object, not only arrays
  const objs = (levels) => `${'{"k":'.repeat(levels)}0${'}'.repeat(levels)}`;
  assert.equal(certain(withPayload(objs(deepest))), true);
  assert.equal(certain(withPayload(objs(deepest + 1))), false);
});

test('a frame cut anywhere is not certain, and no byte past end is read', () => {
  const texts = [TELEMETRY, JSON.stringify(frame('a\\"é', { n: -1.5e-7, t: true, f: false, z: null, s: '\u0001' }, 'c'))];
  for (const text of texts) {
    // the whole frame stays in the buffer, so reading past end would find the rest of it
    const b = Buffer.from(text + text);
    const len = Buffer.byteLength(text);
    assert.equal(isCertainTelemetry(b, 0, len), true);
    assert.equal(isCertainTelemetry(b, len, 2 * len), true);
    for (let end = 0; end < len; end++) {
      assert.equal(isCertainTelemetry(b, 0, end), false, `cut at ${end}`);
      assert.equal(isCertainTelemetry(b, len, len + end), false, `second copy cut at ${end}`);
    }
  }
  // each kind of value cut short, where the buffer holds the rest
  for (const v of ['true', 'false', 'null', '"\\u00e9"', '-12.5e+3', '[1,2]', '{"a":1}']) {
    const b = Buffer.from(v);
    assert.equal(scanValue(b, 0, b.length, 0), b.length, v);
    for (let end = 0; end < b.length; end++) {
      const r = scanValue(b, 0, end, 0);
      assert.ok(r <= end, `${v} cut at ${end} gave ${r}`);
      if (r > 0) assert.ok(parses(v.slice(0, r)), `${v} cut at ${end} gave ${r}`);
    }
  }
});

test('scanValue returns the position after exactly one value, or -1', () => {
  const cases = [
    ['"abc"xyz', 5],
    ['123 ', 3],
    ['0123', 1],
    ['-0.5e3,', 6],
    ['truex', 4],
    ['[ 1 , [ ] , { } ]tail', 17],
    ['{ "a" : [ null ] }  ', 18],
    [' 1', -1],
    ['tru', -1],
    ['nul', -1],
    ['fals', -1],
    ['True', -1],
    ['[1,]', -1],
    ['[,1]', -1],
    ['{"a"}', -1],
    ['{"a":}', -1],
    ['{a:1}', -1],
    ['{"a":1,}', -1],
    ["'a'", -1],
    ['', -1],
  ];
  for (const [text, want] of cases) {
    const b = Buffer.from(text);
    assert.equal(scanValue(b, 0, b.length, 0), want, JSON.stringify(text));
  }
});

// ---- generators -------------------------------------------------------------------------------

// Characters that stress the scanner: quotes, backslashes, control characters (escaped by
// JSON.stringify as \u00XX), lone surrogates (escaped too), multi-byte UTF-8.
const unit = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.constantFrom('"', '\\', '/', '\u0000', '\u0010', '\u0019', '\u001f', '\b', '\t', '\n', '\r', '\u007f') },
  { weight: 2, arbitrary: fc.constantFrom('é', '漢', '🚀', '\u2028', '\ufeff', '\ud800', '\udfff') },
);
const str = fc.string({ unit, maxLength: 8 });
const jsonValue = fc.jsonValue({ maxDepth: 3, stringUnit: unit });
const KNOWN = new Set(['sdkclient', 'payload', 'channel', 'name']);
// mostly plain keys, so that most generated frames are certain; now and then one JSON.stringify escapes
const extraKey = fc
  .oneof({ weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 8 }) }, { weight: 1, arbitrary: str })
  .filter((k) => !KNOWN.has(k));

// Everything the mutations below may put into a frame: JSON's punctuation, escapes, hex digits and
// bytes next to them (0x10-0x19 once passed for the digits 0-9 in a \u escape), other whitespace.
const MUTATION_CHARS = [...'{}[]":,\\/ \t\r\n0123456789-+.eEtrufalsnuUabcdefABCDEFxg', '\u0000', '\u0001', '\u0010', '\u0015', '\u0019', '\u001f', '\u000b', '\u00a0', '\ufeff', 'é', '🚀'];
const mutation = fc.record({ op: fc.constantFrom('insert', 'replace', 'delete', 'repeat'), at: fc.nat(), ch: fc.constantFrom(...MUTATION_CHARS), len: fc.integer({ min: 1, max: 12 }) });

function mutate(text, mutations) {
  // on code points, so that no surrogate pair is split
  let cps = [...text];
  for (const { op, at, ch, len } of mutations) {
    const i = at % (cps.length + 1);
    if (op === 'insert') cps.splice(i, 0, ch);
    else if (op === 'replace') cps.splice(i, 1, ch);
    else if (op === 'delete') cps.splice(i, 1);
    else cps.splice(i, 0, ...cps.slice(i, i + len));
  }
  return cps.join('');
}
const mutated = (textArb, maxMutations = 4) =>
  fc.tuple(textArb, fc.array(mutation, { minLength: 1, maxLength: maxMutations })).map(([t, m]) => mutate(t, m));

const INDENTS = [undefined, 1, '\t', '\r\n '];
/** arb in about one case out of eight, otherwise the given value. */
const rarely = (arb, otherwise) => fc.oneof({ weight: 7, arbitrary: fc.constant(otherwise) }, { weight: 1, arbitrary: arb });

/** Telemetry-shaped frames: mostly valid, sometimes a wrong type, a missing or extra member, deep. */
const telemetryFrame = fc
  .record({
    name: fc.oneof({ weight: 9, arbitrary: str }, { weight: 1, arbitrary: jsonValue }),
    payload: fc.oneof(
      { weight: 8, arbitrary: fc.dictionary(str, jsonValue, { maxKeys: 4 }) },
      { weight: 1, arbitrary: jsonValue },
      { weight: 1, arbitrary: fc.integer({ min: MAX_SCAN_DEPTH - 5, max: MAX_SCAN_DEPTH + 2 }).map((n) => ({ deep: JSON.parse(`${'['.repeat(n)}${']'.repeat(n)}`) })) },
    ),
    channel: fc.option(fc.oneof({ weight: 9, arbitrary: str }, { weight: 1, arbitrary: jsonValue }), { nil: undefined, freq: 2 }),
    dataExtra: fc.dictionary(extraKey, jsonValue, { maxKeys: 2 }),
    clientExtra: fc.dictionary(extraKey, jsonValue, { maxKeys: 2 }),
    topExtra: rarely(fc.dictionary(fc.constantFrom('signal', 'x', 'data2'), jsonValue, { minKeys: 1, maxKeys: 1 }), {}),
    omit: rarely(fc.constantFrom('sdkclient', 'payload', 'name'), null),
    order: fc.array(fc.double({ noNaN: true }), { minLength: 8, maxLength: 8 }),
    indent: fc.constantFrom(...INDENTS),
  })
  .map((g) => {
    const client = { ...g.clientExtra };
    if (g.omit !== 'name') client.name = g.name;
    const members = Object.entries(g.dataExtra);
    if (g.omit !== 'sdkclient') members.push(['sdkclient', client]);
    if (g.omit !== 'payload') members.push(['payload', g.payload]);
    if (g.channel !== undefined) members.push(['channel', g.channel]);
    const shuffled = members.map((m, i) => [g.order[i], m]).sort((a, b) => a[0] - b[0]).map(([, m]) => m);
    const data = {};
    for (const [k, v] of shuffled) Object.defineProperty(data, k, { value: v, enumerable: true, writable: true, configurable: true });
    const f = { data, ...g.topExtra };
    return { value: f, text: JSON.stringify(f, null, g.indent) };
  });

/** What the fast path should say of a frame built by telemetryFrame: certain unless in doubt. */
function expectedCertain({ value, text }) {
  if (fullPathVerdict(text) !== 'telemetry') return false;
  if (Object.keys(value).length !== 1) return false; // another top-level member besides data
  if (nesting(value) > MAX_SCAN_DEPTH + 1) return false;
  const escaped = (k) => JSON.stringify(k).includes('\\');
  if (Object.keys(value.data).some(escaped) || Object.keys(value.data.sdkclient).some(escaped)) return false;
  return true;
}

// ---- properties -------------------------------------------------------------------------------

test('property: scanValue accepts exactly the JSON texts JSON.parse accepts (generated and mutated)', () => {
  const texts = fc.oneof(
    fc.json({ maxDepth: 4, stringUnit: unit }),
    jsonValue.chain((v) => fc.constantFrom(...INDENTS).map((ind) => JSON.stringify(v, null, ind))),
    mutated(fc.json({ maxDepth: 4, stringUnit: unit })),
  );
  fc.assert(
    fc.property(texts, (text) => {
      const decoded = Buffer.from(text).toString(); // what the simulator would decode
      assert.equal(scannerAccepts(text), parses(decoded), JSON.stringify(text));
    }),
    { numRuns: 1500, ...FC },
  );
});

test('property: every span scanValue reports is one whole JSON value', () => {
  fc.assert(
    fc.property(mutated(fc.json({ maxDepth: 3, stringUnit: unit })), fc.nat(), (text, at) => {
      const b = Buffer.from(text);
      const start = at % (b.length + 1);
      const e = scanValue(b, start, b.length, 0);
      if (e === -1) return;
      assert.ok(e > start && e <= b.length, `span [${start}, ${e}) of ${JSON.stringify(text)}`);
      const span = b.subarray(start, e).toString();
      assert.ok(parses(span), `span ${JSON.stringify(span)} of ${JSON.stringify(text)}`);
    }),
    { numRuns: 1500, ...FC },
  );
});

test('property: strings, numbers and literals built from their own characters agree with JSON.parse', () => {
  const soup = (pieces, maxLength) => fc.array(fc.constantFrom(...pieces), { maxLength }).map((a) => a.join(''));
  const strings = soup(['a', '"', '\\', 'u', 'U', '0', '9', 'a', 'f', 'F', 'g', 'n', 't', 'b', '/', 'x', ' ', '\t', '\u0000', '\u0010', '\u0019', '\u001f', '\u007f', 'é', '🚀'], 10).map((s) => `"${s}"`);
  const numbers = soup([...'-+.eE0123456789', '0', '1'], 8);
  const literals = soup([...'truefalsn'], 6);
  fc.assert(
    fc.property(fc.oneof(strings, numbers, literals), (text) => {
      const b = Buffer.from(text);
      assert.equal(scanValue(b, 0, b.length, 0) === b.length, parses(text), JSON.stringify(text));
    }),
    { numRuns: 3000, ...FC },
  );
});

test('property: on generated telemetry-shaped frames the fast path is certain exactly when the full path counts telemetry and nothing calls for doubt', (t) => {
  let certainSeen = 0;
  let doubtSeen = 0;
  fc.assert(
    fc.property(telemetryFrame, (g) => {
      const want = expectedCertain(g);
      assert.equal(certain(g.text), want, g.text);
      if (want) certainSeen++;
      else doubtSeen++;
    }),
    { numRuns: 600, ...FC },
  );
  t.diagnostic(`certain ${certainSeen}, not certain ${doubtSeen}`);
  // the generator must exercise both answers, or the property says little
  assert.ok(certainSeen > 100 && doubtSeen > 50, `certain ${certainSeen}, not certain ${doubtSeen}`);
});

test('property: whatever the fast path calls certain in mutated frames, the full path counts as telemetry', (t) => {
  let certainSeen = 0;
  let total = 0;
  fc.assert(
    fc.property(mutated(telemetryFrame.map((g) => g.text), 2), (text) => {
      total++;
      if (!certain(text)) return;
      certainSeen++;
      assert.equal(fullPathVerdict(Buffer.from(text).toString()), 'telemetry', JSON.stringify(text));
    }),
    { numRuns: 3000, ...FC },
  );
  t.diagnostic(`${certainSeen} of ${total} mutated frames were certain`);
  assert.ok(certainSeen > 100, `only ${certainSeen} mutated frames were certain`);
});

test('property: the verdict depends only on the bytes in [start, end)', () => {
  const around = fc.string({ unit: fc.constantFrom(...MUTATION_CHARS), maxLength: 6 });
  const texts = fc.oneof(telemetryFrame.map((g) => g.text), mutated(telemetryFrame.map((g) => g.text)));
  fc.assert(
    fc.property(around, texts, around, (before, text, after) => {
      const pre = Buffer.byteLength(before);
      const len = Buffer.byteLength(text);
      const b = Buffer.from(before + text + after);
      assert.equal(isCertainTelemetry(b, pre, pre + len), certain(text), JSON.stringify([before, text, after]));
    }),
    { numRuns: 800, ...FC },
  );
});

// ---- the oracle against the real simulator --------------------------------------------------------

test('fullPathVerdict judges frames as a keeping AgentSimulator does', async (t) => {
  // The properties above trust fullPathVerdict; here a simulator with keepFrames on (JSON.parse for
  // every frame) receives a sample of the same frames and must count exactly those as telemetry.
  // one line each, as the simulator splits frames at newlines
  const compact = telemetryFrame.map((g) => JSON.stringify(g.value));
  const sample = fc
    .sample(fc.oneof(compact, mutated(compact)), { numRuns: 400, seed: 20240 })
    .filter((text) => !/[\r\n]/.test(text) && text.trim() !== '');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iottly-scanner-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sim = new AgentSimulator({ socketPath: path.join(dir, 'sock') });
  t.after(() => sim.close());
  await sim.listen();
  const end = JSON.stringify(frame('end', {}));
  const socket = net.connect(sim.socketPath);
  t.after(() => socket.destroy());
  socket.write(`${[...sample, end].join('\n')}\n`);
  await sim.waitFor(() => sim.telemetry.some((r) => r.raw === end), 10_000, 'the last frame');
  const counted = sim.telemetry.map((r) => r.raw).filter((raw) => raw !== end);
  const expected = sample.filter((text) => fullPathVerdict(Buffer.from(text).toString()) === 'telemetry').map((text) => Buffer.from(text).toString());
  assert.ok(expected.length > 50 && expected.length < sample.length - 50, `${expected.length} of ${sample.length} are telemetry`);
  assert.deepEqual(counted, expected);
});
