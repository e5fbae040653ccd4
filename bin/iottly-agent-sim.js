#!/usr/bin/env node
'use strict';

let cli;
try {
  cli = require('../dist/sim/cli.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/sim/cli')) {
    process.stderr.write('iottly-agent-sim: dist/sim/cli.js is missing; run `npm run build` first\n');
    process.exit(1);
  }
  throw err;
}

cli.main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`iottly-agent-sim: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  },
);
