'use strict';
// A hand-written SVG of the throughput and memory cases: bar panels (median with a min–max whisker)
// for the burst rates and line panels for RSS over time. No dependencies.

const { fmt } = require('./stats');

const W = 960;
const LEFT = 300;
const RIGHT = 90;
const COLORS = { sdk: '#2b6cb0', naive: '#c05621', stringify: '#718096', chunks: '#2f855a' };
const LINE_COLORS = ['#2b6cb0', '#c05621', '#2f855a', '#805ad5', '#d69e2e', '#718096', '#e53e3e', '#319795'];

const tick = (v) => (Number.isInteger(v) && Math.abs(v) < 1e4 ? String(v) : fmt(v));
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const text = (x, y, s, attrs = '') => `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;

/** Horizontal bars on a log scale (the rates span two orders of magnitude). */
function barPanel(y0, title, items, unit) {
  const rowH = 26;
  const top = y0 + 34;
  const h = 34 + items.length * rowH + 30;
  const xs = items.flatMap((i) => [i.min, i.max, i.median]).filter((v) => v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...xs))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...xs))));
  const plotW = W - LEFT - RIGHT;
  const sx = (v) => LEFT + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
  const out = [text(20, y0 + 20, title, 'class="title"')];
  for (let d = lo; d <= hi; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > hi) break;
      const x = sx(v);
      out.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${top + items.length * rowH}" class="${m === 1 ? 'grid' : 'grid minor'}"/>`);
      out.push(text(x, top + items.length * rowH + 16, tick(v), 'class="tick" text-anchor="middle"'));
    }
  }
  items.forEach((it, i) => {
    const y = top + i * rowH;
    const color = COLORS[it.kind] ?? '#4a5568';
    out.push(text(LEFT - 8, y + 16, it.label, 'class="label" text-anchor="end"'));
    out.push(`<rect x="${LEFT}" y="${y + 4}" width="${Math.max(1, sx(it.median) - LEFT).toFixed(1)}" height="${rowH - 8}" fill="${color}" opacity="0.85"/>`);
    if (it.max > it.min) {
      const cy = y + rowH / 2;
      out.push(`<line x1="${sx(it.min).toFixed(1)}" y1="${cy}" x2="${sx(it.max).toFixed(1)}" y2="${cy}" class="whisker"/>`);
      out.push(`<line x1="${sx(it.min).toFixed(1)}" y1="${cy - 5}" x2="${sx(it.min).toFixed(1)}" y2="${cy + 5}" class="whisker"/>`);
      out.push(`<line x1="${sx(it.max).toFixed(1)}" y1="${cy - 5}" x2="${sx(it.max).toFixed(1)}" y2="${cy + 5}" class="whisker"/>`);
    }
    out.push(text(Math.max(sx(it.max), sx(it.median)) + 6, y + 16, `${fmt(it.median)} ${unit}`, 'class="value"'));
  });
  return { svg: out.join('\n'), h };
}

/** Lines of { x, y } points on linear axes. */
function linePanel(y0, title, series, xLabel, yLabel, { yMin = 0, yMax = null, refLine = null } = {}) {
  const plotH = 200;
  const top = y0 + 34;
  const h = 34 + plotH + 60 + Math.ceil(series.length / 2) * 18;
  const all = series.flatMap((s) => s.points);
  const xMax = Math.max(...all.map((p) => p.x), 1);
  const ymax = yMax ?? Math.max(...all.map((p) => p.y), refLine ? refLine.y : 1, 1) * 1.1;
  const plotW = W - 80 - RIGHT;
  const x0 = 80;
  const sx = (v) => x0 + (v / xMax) * plotW;
  const sy = (v) => top + plotH - ((v - yMin) / (ymax - yMin)) * plotH;
  const out = [text(20, y0 + 20, title, 'class="title"')];
  const step = niceStep(ymax - yMin);
  for (let v = yMin; v <= ymax + 1e-9; v += step) {
    out.push(`<line x1="${x0}" y1="${sy(v).toFixed(1)}" x2="${x0 + plotW}" y2="${sy(v).toFixed(1)}" class="grid"/>`);
    out.push(text(x0 - 6, sy(v) + 4, tick(v), 'class="tick" text-anchor="end"'));
  }
  const xstep = niceStep(xMax);
  for (let v = 0; v <= xMax + 1e-9; v += xstep) {
    out.push(text(sx(v), top + plotH + 16, tick(v), 'class="tick" text-anchor="middle"'));
  }
  out.push(text(x0 + plotW / 2, top + plotH + 34, xLabel, 'class="tick" text-anchor="middle"'));
  out.push(text(16, top + plotH / 2, yLabel, `class="tick" text-anchor="middle" transform="rotate(-90 16 ${top + plotH / 2})"`));
  if (refLine) {
    out.push(`<line x1="${x0}" y1="${sy(refLine.y).toFixed(1)}" x2="${x0 + plotW}" y2="${sy(refLine.y).toFixed(1)}" stroke="#e53e3e" stroke-width="1.5" stroke-dasharray="3 3"/>`);
    out.push(text(x0 + plotW + 4, sy(refLine.y) + 4, refLine.label, 'class="tick" fill="#e53e3e"'));
  }
  series.forEach((s, i) => {
    const color = LINE_COLORS[i % LINE_COLORS.length];
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    const lx = x0 + (i % 2) * 420;
    const ly = top + plotH + 54 + Math.floor(i / 2) * 18;
    out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 22}" y2="${ly - 4}" stroke="${color}" stroke-width="3"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(text(lx + 28, ly, s.label, 'class="label"'));
  });
  return { svg: out.join('\n'), h };
}

function niceStep(range) {
  const raw = range / 5;
  const p = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}

/** The chart for a full results object (bench/results/latest.json). */
function buildChart(results) {
  const panels = [];
  let y = 50;
  const add = (p) => {
    panels.push(`<g>${p.svg}</g>`);
    y += p.h;
  };
  const byName = Object.fromEntries(results.cases.map((c) => [c.name, c]));
  const burst = byName.burst?.series?.burst ?? [];
  for (const group of [...new Set(burst.map((b) => b.group))]) {
    add(barPanel(y, `Burst send, delivered end to end: ${group}, msg/s (log scale; bar = median, whisker = min–max)`, burst.filter((b) => b.group === group), 'msg/s'));
  }
  const buf = byName.buffering?.series?.buffering ?? [];
  if (buf.length) {
    add(linePanel(y, 'Agent away: RSS growth while 1 000 000 messages are sent (maxBufferedMsgs 10 000)', buf.map((s) => ({ label: s.label, points: s.points.map((p) => ({ x: p.x, y: p.rss })), dashed: s.label.startsWith('baseline') })), 'send() calls', 'MB', { refLine: { y: 30, label: 'target' } }));
  }
  const slow = byName['slow-agent']?.series?.rss ?? [];
  if (slow.length) {
    add(linePanel(y, 'Slow agent: RSS growth over time while sending faster than the agent reads', slow.map((s) => ({ label: s.label, points: s.points })), 'seconds', 'MB'));
  }
  const m = results.machine;
  const header = [
    text(20, 24, 'iottly-sdk benchmarks', 'class="h1"'),
    text(20, 42, `${m.cpu} × ${m.cores}, Node ${m.node}, ${m.date}${m.commit ? `, ${m.commit.slice(0, 10)}` : ''}; transports: ${results.transports.join(', ')}${results.nativeError ? ' (native not available)' : ''}`, 'class="tick"'),
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 10}" viewBox="0 0 ${W} ${y + 10}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">
<style>
.h1 { font-size: 18px; font-weight: 600; fill: #1a202c }
.title { font-size: 14px; font-weight: 600; fill: #1a202c }
.label { font-size: 12px; fill: #2d3748 }
.value { font-size: 12px; fill: #1a202c }
.tick { font-size: 11px; fill: #4a5568 }
.grid { stroke: #cbd5e0; stroke-width: 1 }
.grid.minor { stroke: #edf2f7 }
.whisker { stroke: #1a202c; stroke-width: 1.5 }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
${header.join('\n')}
${panels.join('\n')}
</svg>
`;
}

module.exports = { buildChart };
