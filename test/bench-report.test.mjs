// bench/lib/report.js: the console tables of `npm run bench` fit in 120 columns, whatever the case's
// number of columns, and lose no cell on the way.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { textTable, renderCaseText, WIDTH } = require('../bench/lib/report.js');

const width = (text) => Math.max(...text.split('\n').map((l) => [...l].length));

// The slow-agent case's columns, with cells as wide as a real run's.
const wide = {
  title: 'one run per sender',
  columns: ['sender', 'accepted', 'delivered', 'dropped (counted)', 'send() ns/call', 'RSS growth peak MB', 'RSS growth in the second half MB',
    'heap kept after GC MB', 'SDK queue MB', 'false returns', "'drain' events", 'books balance'],
  rows: [
    ['SDK, js, ignores send() result', '150000', '58693', '91307', '927 (849–1119)', '44.8', '19.4', '9.13', '4.06', '137260', '1', 'yes'],
    ["SDK, native, honours send() result and 'drain'", '34565 (+115435 held back by the app)', '34565', '0', '1049 (777–1312)', '3.79', '0.250', '0.0463', '1.00', '13', '13', 'yes'],
  ],
};

describe('bench console tables', () => {
  it(`a table of twelve columns fits in ${WIDTH} columns, split into parts that each repeat the sender`, () => {
    const out = textTable(wide);
    assert.ok(width(out) <= WIDTH, `widest line ${width(out)}:\n${out}`);
    for (const row of wide.rows) for (const cell of row) assert.ok(out.includes(cell), `${cell} missing from\n${out}`);
    const parts = out.split('\n\n');
    assert.ok(parts.length > 1);
    for (const part of parts) for (const row of wide.rows) assert.ok(part.includes(row[0]), `a part without the sender column:\n${part}`);
  });

  it('a narrow table stays in one part, headers on one line', () => {
    const out = textTable({ title: 't', columns: ['sender', 'msg/s'], rows: [['SDK, js', '1.00M']] });
    assert.equal(out, ['   t', '   sender   msg/s', '   -------  -----', '   SDK, js  1.00M'].join('\n'));
  });

  it('paced-style tables repeat every column up to the sender', () => {
    const columns = ['msg/s', 'sender', ...Array.from({ length: 10 }, (_, i) => `a long column header number ${i}`)];
    const out = textTable({ title: 'paced', columns, rows: [['100k', 'SDK, native', ...columns.slice(2).map((_, i) => `${i}.000 (0.100–9.999)`)]] });
    assert.ok(width(out) <= WIDTH, out);
    for (const part of out.split('\n\n')) assert.match(part, /100k\s+SDK, native/);
  });

  it('summary lines wrap within the width', () => {
    const text = renderCaseText({
      tables: [],
      summary: [{ label: 'js, app ignores backpressure', text: 'RSS growth: peak 44.8 MB, 19.4 MB of it in the second half; '.repeat(4), target: 'bounded', met: true }],
      seconds: 1,
    });
    assert.ok(width(text) <= WIDTH, text);
  });
});
