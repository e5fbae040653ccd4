'use strict';
// Tables for the console and for markdown. A cell is a string or a measured figure
// { median, min, max, n } (see stats.summary), shown as "median (min–max)".

const { summary, fmt } = require('./stats');

/** A measured cell from raw samples; `scale` converts units (e.g. ns to µs). */
function cell(samples, scale = 1, digits = 3) {
  const xs = samples.filter((x) => Number.isFinite(x)).map((x) => x * scale);
  if (xs.length === 0) return { text: '–' };
  const s = summary(xs);
  return { ...s, digits };
}

function cellText(c) {
  if (c === null || c === undefined) return '–';
  if (typeof c === 'string' || typeof c === 'number') return String(c);
  if (c.text) return c.text;
  if (c.n === 1 || c.min === c.max) return fmt(c.median, c.digits);
  return `${fmt(c.median, c.digits)} (${fmt(c.min, c.digits)}–${fmt(c.max, c.digits)})`;
}

function pad(s, w) {
  return s + ' '.repeat(Math.max(0, w - [...s].length));
}

function textTable(t) {
  const rows = [t.columns, ...t.rows.map((r) => r.map(cellText))];
  const widths = t.columns.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? '')].length)));
  const line = (r) => '   ' + r.map((c, i) => pad(c ?? '', widths[i])).join('  ');
  return [`   ${t.title}`, line(t.columns), '   ' + widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

function mdTable(t) {
  const esc = (s) => String(s).replace(/\|/g, '\\|');
  const out = [`**${t.title}**`, '', `| ${t.columns.map(esc).join(' | ')} |`, `|${t.columns.map(() => '---').join('|')}|`];
  for (const r of t.rows) out.push(`| ${r.map((c) => esc(cellText(c))).join(' | ')} |`);
  return out.join('\n');
}

function summaryLines(s) {
  return (s || []).map((x) => {
    const verdict = x.met === undefined ? '' : x.met ? ' — met' : ' — MISSED';
    return `${x.label}: ${x.text}${x.target ? ` (target ${x.target})` : ''}${verdict}`;
  });
}

function renderCaseText(c) {
  const parts = [];
  for (const t of c.tables || []) parts.push(textTable(t));
  const sum = summaryLines(c.summary);
  if (sum.length) parts.push('   summary:\n' + sum.map((l) => `     ${l}`).join('\n'));
  for (const n of c.notes || []) parts.push(`   note: ${n}`);
  for (const f of c.failures || []) parts.push(`   FAILED ${f.variant}: ${f.error}`);
  parts.push(`   (${c.seconds.toFixed(0)} s)`);
  return parts.join('\n\n');
}

function renderCaseMarkdown(c) {
  const parts = [`### ${c.name}: ${c.title}`, ''];
  if (c.nativeError) parts.push(`Transports: js only (native not available: \`${c.nativeError}\`).`, '');
  else parts.push(`Transports: ${c.transports.join(', ')}.`, '');
  if (c.method) parts.push(c.method, '');
  if (c.load) parts.push(`1-minute load average ${c.load[0]} at the start of this case, ${c.load[1]} at the end; ${Math.round(c.seconds)} s.`, '');
  for (const t of c.tables || []) parts.push(mdTable(t), '');
  const sum = summaryLines(c.summary);
  if (sum.length) parts.push(...sum.map((l) => `- ${l}`), '');
  for (const n of c.notes || []) parts.push(`> ${n}`, '');
  for (const f of c.failures || []) parts.push(`**FAILED** \`${f.variant}\`: ${f.error}`, '');
  return parts.join('\n');
}

module.exports = { cell, cellText, renderCaseText, renderCaseMarkdown, textTable, mdTable };
