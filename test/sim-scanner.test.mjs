// The simulator's telemetry fast path (src/sim/scanner.ts) on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { isCertainTelemetry, scanValue } = require('../dist/sim/scanner.js');

const certain = (text) => {
  const b = Buffer.from(text);
  return isCertainTelemetry(b, 0, b.length);
};

function parses(text) {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

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
