'use strict';
// Writes thin ESM entry points over the CommonJS build, so `import` and `require` share one instance
// (no dual-package hazard) and ESM users still get named exports.
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const entries = { 'index.mjs': '../index.js', 'js.mjs': '../js.js', 'sim.mjs': '../sim/index.js' };

fs.mkdirSync(path.join(dist, 'esm'), { recursive: true });
for (const [file, target] of Object.entries(entries)) {
  const resolved = path.join(dist, 'esm', target);
  if (!fs.existsSync(resolved)) continue;
  const names = Object.keys(require(resolved)).filter((n) => n !== 'default' && n !== '__esModule');
  const body =
    `import cjs from ${JSON.stringify(target)};\n` +
    `export const { ${names.join(', ')} } = cjs;\n` +
    'export default cjs;\n';
  fs.writeFileSync(path.join(dist, 'esm', file), body);
}
