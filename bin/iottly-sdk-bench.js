#!/usr/bin/env node
'use strict';

let cli;
try {
  cli = require('../dist/bench/cli.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/bench/cli')) {
    process.stderr.write('iottly-sdk-bench: dist/bench/cli.js is missing; run `npm run build` first\n');
    process.exit(1);
  }
  throw err;
}

// The command forks itself once per sender (dist/bench/sender.js); the flag is its own, not the user's.
if (process.argv[2] === cli.SENDER_FLAG && typeof process.send === 'function') {
  cli.runSender();
} else {
  cli.main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`iottly-sdk-bench: ${err && err.stack ? err.stack : err}\n`);
      process.exitCode = 1;
    },
  );
}
