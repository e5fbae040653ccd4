'use strict';
// Writes thin ESM entry points over the CommonJS build, so `import` and `require` share one instance
// (no dual-package hazard) and ESM users still get named exports. Each wrapper gets its own `.d.mts`
// re-exporting the CommonJS declarations, so that TypeScript sees an ES module where Node loads one
// (without it, `import` under `moduleResolution: node16` is typed as CommonJS: "masquerading as CJS").
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const entries = { index: '../index.js', js: '../js.js', sim: '../sim/index.js' };

fs.mkdirSync(path.join(dist, 'esm'), { recursive: true });
for (const [name, target] of Object.entries(entries)) {
  const resolved = path.join(dist, 'esm', target);
  if (!fs.existsSync(resolved)) continue;
  const names = Object.keys(require(resolved)).filter((n) => n !== 'default' && n !== '__esModule');
  const from = JSON.stringify(target);
  const body = `import cjs from ${from};\n` + `export const { ${names.join(', ')} } = cjs;\n` + 'export default cjs;\n';
  fs.writeFileSync(path.join(dist, 'esm', `${name}.mjs`), body);
  const types = `import cjs from ${from};\n` + `export * from ${from};\n` + 'export default cjs;\n';
  fs.writeFileSync(path.join(dist, 'esm', `${name}.d.mts`), types);
}
