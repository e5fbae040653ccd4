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

/** The terminal width the text output is laid out for. */
const WIDTH = 120;
/** A header wraps at spaces down to this width (or its column's cells' width, if wider). */
const HEADER_MIN = 12;

const len = (s) => [...s].length;

function pad(s, w) {
  return s + ' '.repeat(Math.max(0, w - len(s)));
}

/** Greedy word wrap at spaces; a word longer than `width` keeps its own line. */
function wrapWords(text, width) {
  const lines = [];
  let line = '';
  for (const word of String(text).split(' ')) {
    if (line && len(line) + 1 + len(word) > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  lines.push(line);
  return lines;
}

/** `text` wrapped to `width` columns, the first line after `first`, the others after `rest`. */
function wrapLine(text, first, rest, width = WIDTH) {
  const lines = wrapWords(text, width - len(rest));
  if (lines.length > 1 && len(first) + len(lines[0]) > width) return wrapWords(text, width - len(first)).map((l, i) => (i ? rest : first) + l).join('\n');
  return lines.map((l, i) => (i ? rest : first) + l).join('\n');
}

/**
 * A table for the console, within WIDTH columns: headers wrap onto several lines, and a table still
 * too wide is split into parts stacked one under the other, each repeating the key columns (the
 * first one, or up to `sender`/`receiver`, or `t.keys`).
 */
function textTable(t, width = WIDTH) {
  const indent = '   ';
  const body = t.rows.map((r) => t.columns.map((_, i) => cellText(r[i])));
  const cellW = t.columns.map((_, i) => Math.max(0, ...body.map((r) => len(r[i]))));
  const heads = t.columns.map((c, i) => wrapWords(c, Math.max(cellW[i], HEADER_MIN)));
  const widths = t.columns.map((_, i) => Math.max(cellW[i], ...heads[i].map(len)));
  const keys = t.keys ?? Math.max(1, t.columns.findIndex((c) => /^(sender|receiver)$/.test(c)) + 1);
  const room = width - indent.length;
  const span = (cols) => cols.reduce((sum, i) => sum + widths[i], 0) + 2 * (cols.length - 1);
  const keyCols = t.columns.map((_, i) => i).slice(0, keys);
  const parts = [];
  let part = [];
  for (let i = keys; i < t.columns.length; i++) {
    if (part.length && span([...keyCols, ...part, i]) > room) {
      parts.push(part);
      part = [];
    }
    part.push(i);
  }
  parts.push(part);
  const render = (cols) => {
    const depth = Math.max(...cols.map((i) => heads[i].length));
    // Headers sit on their last line, just above the rule.
    const headLines = Array.from({ length: depth }, (_, k) =>
      cols.map((i) => heads[i][k - (depth - heads[i].length)] ?? ''),
    );
    const line = (cells) => (indent + cells.map((c, j) => pad(c, widths[cols[j]])).join('  ')).trimEnd();
    return [...headLines.map(line), indent + cols.map((i) => '-'.repeat(widths[i])).join('  '), ...body.map((r) => line(cols.map((i) => r[i])))].join('\n');
  };
  return `${indent}${t.title}\n` + parts.map((p) => render([...keyCols, ...p])).join('\n\n');
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
  if (sum.length) parts.push('   summary:\n' + sum.map((l) => wrapLine(l, '     ', '       ')).join('\n'));
  for (const n of c.notes || []) parts.push(wrapLine(`note: ${n}`, '   ', '     '));
  for (const f of c.failures || []) parts.push(wrapLine(`FAILED ${f.variant}: ${f.error}`, '   ', '     '));
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

module.exports = { WIDTH, cell, cellText, renderCaseText, renderCaseMarkdown, textTable, mdTable, wrapLine };
