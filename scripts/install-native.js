'use strict';
// `npm install` hook: build the native transport if this machine can, and never fail the install.
// cmake-js (CMakeLists.txt) is preferred; with a compiler but no CMake, node-gyp (binding.gyp).
// Without a toolchain the pure-JS transport serves, and one line says so.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const logFile = path.join(root, 'build', 'native-build.log');

function say(line) {
  process.stdout.write(`iottly-sdk: ${line}\n`);
}

function has(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

function compiler() {
  const candidates = [process.env.CXX, 'c++', 'g++', 'clang++'].filter(Boolean);
  return candidates.find((c) => has(c)) ?? null;
}

function run(label, cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  // After the build: `node-gyp rebuild` starts by deleting build/.
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  fs.appendFileSync(logFile, `$ ${label}\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}\n`);
  return r.status === 0;
}

function nodeGyp() {
  const bundled = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const candidates = [process.env.npm_config_node_gyp, bundled].filter(Boolean);
  return candidates.find((p) => fs.existsSync(p)) ?? null;
}

function loads() {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(root, 'build', 'Release', 'iottly_native.node'))})`], {
    stdio: 'ignore',
  });
  return r.status === 0;
}

function main() {
  const fallback = 'the JS transport will be used; `npm run build:native` builds the addon once a toolchain is installed';
  if (process.env.IOTTLY_SDK_SKIP_NATIVE === '1') {
    say(`native addon not built (IOTTLY_SDK_SKIP_NATIVE=1): ${fallback}`);
    return;
  }
  const cxx = compiler();
  if (!cxx) {
    say(`native addon not built (no C++ compiler found): ${fallback}`);
    return;
  }
  try {
    fs.rmSync(logFile, { force: true });
  } catch {
    // a log from an earlier run is harmless
  }
  if (has('cmake')) {
    const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
    if (run('cmake-js compile', process.execPath, [cmakeJs, 'compile']) && loads()) {
      say('native transport built with cmake-js');
      return;
    }
    say(`native addon build with cmake-js failed (see ${path.relative(process.cwd(), logFile)}): ${fallback}`);
    return;
  }
  const gyp = nodeGyp();
  if (gyp && run('node-gyp rebuild', process.execPath, [gyp, 'rebuild']) && loads()) {
    say('native transport built with node-gyp (no CMake found)');
    return;
  }
  say(`native addon not built (no CMake${gyp ? ', node-gyp failed' : ' and no node-gyp'}; log in ${path.relative(process.cwd(), logFile)}): ${fallback}`);
}

try {
  main();
} catch (err) {
  say(`native addon not built (${err && err.message}): the JS transport will be used`);
}
