'use strict';

function sorted(xs) {
  return xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
}

/** Linear-interpolated quantile, q in [0, 1]. */
function quantile(xs, q) {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

const median = (xs) => quantile(xs, 0.5);

/** Median with the full range of the repeats: the spread we quote. */
function summary(xs) {
  const s = sorted(xs);
  return { median: median(s), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, n: s.length };
}

/** Half the min-max range relative to the median, in percent. */
function spreadPct(xs) {
  const { median: m, min, max } = summary(xs);
  return m ? ((max - min) / 2 / Math.abs(m)) * 100 : NaN;
}

/** A compact formatter that keeps three significant digits. */
function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e9) return (x / 1e9).toPrecision(digits) + 'G';
  if (a >= 1e6) return (x / 1e6).toPrecision(digits) + 'M';
  if (a >= 1e4) return (x / 1e3).toPrecision(digits) + 'k';
  if (a >= 100) return x.toFixed(0);
  if (a === 0) return '0';
  return x.toPrecision(digits);
}

module.exports = { quantile, median, summary, spreadPct, fmt };
