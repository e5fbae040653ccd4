// bench/lib/util.js's shuffled(): the order in which the low-rate case and bench/cold-send.js run
// their senders each cycle. Every order must be equally likely, or one sender follows another more
// often than the rest and inherits what that one leaves behind (garbage, cold caches).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { shuffled } = require('../bench/lib/util.js');

/** Every sequence of draws shuffled() can make for n items: draw k (of n - 1) picks one of n - k places. */
function allDraws(n) {
  let seqs = [[]];
  for (let i = n - 1; i > 0; i--) {
    const next = [];
    for (const seq of seqs) for (let j = 0; j <= i; j++) next.push([...seq, (j + 0.5) / (i + 1)]);
    seqs = next;
  }
  return seqs;
}

describe('bench sender order', () => {
  for (const n of [1, 2, 4, 5]) {
    it(`shuffles ${n} senders into each of the ${n}! orders by exactly one sequence of draws`, () => {
      const items = Array.from({ length: n }, (_, i) => `s${i}`);
      const seen = new Map();
      for (const draws of allDraws(n)) {
        let k = 0;
        const order = shuffled(items, () => draws[k++]);
        assert.equal(k, draws.length, 'one draw per place but the last');
        assert.deepEqual([...order].sort(), items, 'a permutation of the senders');
        const key = order.join(',');
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
      let factorial = 1;
      for (let i = 2; i <= n; i++) factorial *= i;
      assert.equal(seen.size, factorial, 'every order reachable');
      for (const [order, count] of seen) assert.equal(count, 1, `${order} reached ${count} ways`);
    });
  }

  it('leaves its argument as it was', () => {
    const items = ['idle', 'naive', 'js', 'native'];
    shuffled(items);
    assert.deepEqual(items, ['idle', 'naive', 'js', 'native']);
  });
});
