'use strict';
// `npm install` hook: give this machine the native transport if it can have it, and never fail the
// install.
//
// - In a source checkout (src/ is there) the addon is always built, so that changed C++ sources are
//   never shadowed by a prebuild.
// - In a project that installed the package, the prebuild for this platform is used when it loads
//   (prebuilds/, see scripts/prebuild.js): nothing is built and nothing is downloaded.
// - Otherwise the addon is built: cmake-js (CMakeLists.txt) when CMake is there, else node-gyp
//   (binding.gyp, bundled with npm) with a C++ compiler alone. The build tools are devDependencies,
//   so a consumer does not install them with the package; when a build is needed and they are not
//   resolvable, they are installed for the build only, at the versions package.json pins, into a
//   temporary folder that is removed afterwards.
// Without a toolchain the pure-JS transport serves, and one line says so.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const logFile = path.join(root, 'build', 'native-build.log');
const checkout = fs.existsSync(path.join(root, 'src'));
const buildCommand = checkout ? '`npm run build:native`' : '`npm rebuild iottly-sdk`';
const fallback = `the JS transport will be used; ${buildCommand} builds the addon once a C++ compiler (and CMake) is installed`;

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

function log(label, r) {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  fs.appendFileSync(logFile, `$ ${label}\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}\n`);
}

function run(label, cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  // After the build: `node-gyp rebuild` starts by deleting build/.
  log(label, r);
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

/**
 * The prebuild for this platform, if the package's own loader accepts it (it loads, and its interface
 * matches this version): its path relative to the package; else null and why not.
 */
function prebuild() {
  const addon = path.join(root, 'dist', 'transport', 'addon.js');
  if (!fs.existsSync(addon)) return { file: null, why: 'dist/ is not built' };
  const script = `
    const addon = require(${JSON.stringify(addon)});
    delete process.env.IOTTLY_SDK_NATIVE_PATH;
    const file = addon.addonCandidates().at(-1);
    process.env.IOTTLY_SDK_NATIVE_PATH = file; // loadBinding() then tries this file alone
    let error = null;
    try { addon.loadBinding(); } catch (err) { error = String(err.message).replace(/^[^(]*\\(|\\)$/g, ''); }
    process.stdout.write(JSON.stringify({ file, error }));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  let out;
  try {
    out = JSON.parse(r.stdout);
  } catch {
    return { file: null, why: `the prebuild could not be checked: ${(r.stderr || String(r.error)).trim().split('\n')[0]}` };
  }
  if (!out.error) return { file: path.relative(root, out.file), why: null };
  if (!fs.existsSync(out.file)) return { file: null, why: `no prebuild for ${process.platform}-${process.arch}` };
  return { file: null, why: `the prebuild does not load: ${out.error.replace(root + path.sep, '')}` };
}

/** The npm that runs this script (npm sets npm_execpath), else the one on PATH. */
function npm() {
  const cli = process.env.npm_execpath;
  if (cli && /npm-cli\.js$/.test(cli) && fs.existsSync(cli)) return { cmd: process.execPath, args: [cli] };
  return { cmd: 'npm', args: [] };
}

/**
 * The environment of the nested `npm install`: the parent's npm_config_* values that say where and
 * what to install (--global, --prefix, --omit, --dry-run...) would redirect it, so only those that
 * say how to reach the registry are kept; the child reads the user's .npmrc itself.
 */
function npmEnv() {
  const keep = /^npm_config_(.*registry|cache|cafile|ca|cert|key|proxy|https_proxy|http_proxy|noproxy|strict_ssl|userconfig|globalconfig|offline|prefer_offline|prefer_online|fetch_.*|loglevel)$/i;
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !keep.test(k)) continue;
    env[k] = v;
  }
  return env;
}

/**
 * Makes `names` resolvable from the package for a build: already there (a checkout, or a project
 * that has them), or installed at the devDependencies' versions into a temporary folder put on
 * NODE_PATH. Returns the build's environment and a cleanup, or null when they could not be had.
 */
function buildTools(names) {
  const resolvable = (name) => {
    try {
      require.resolve(`${name}/package.json`, { paths: [root] });
      return true;
    } catch {
      return false;
    }
  };
  const missing = names.filter((n) => !resolvable(n));
  if (missing.length === 0) return { env: process.env, paths: [root], cleanup() {} };
  const pinned = require(path.join(root, 'package.json')).devDependencies ?? {};
  const specs = missing.map((n) => `${n}@${pinned[n] ?? 'latest'}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iottly-sdk-build-tools-'));
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "private": true }\n');
  say(`installing the build tools for this build only (${specs.join(', ')})`);
  const { cmd, args } = npm();
  const r = spawnSync(
    cmd,
    [...args, 'install', '--prefix', dir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', ...specs],
    { cwd: dir, env: npmEnv(), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  log(`npm install ${specs.join(' ')} (into ${dir})`, r);
  if (r.status !== 0) {
    cleanup();
    return null;
  }
  const modules = path.join(dir, 'node_modules');
  const env = { ...process.env, NODE_PATH: [modules, process.env.NODE_PATH].filter(Boolean).join(path.delimiter) };
  return { env, paths: [root, modules], cleanup };
}

function main() {
  if (process.env.IOTTLY_SDK_SKIP_NATIVE === '1') {
    say(`native addon not built (IOTTLY_SDK_SKIP_NATIVE=1): ${fallback}`);
    return;
  }
  let why = null;
  if (!checkout) {
    const found = prebuild();
    if (found.file) {
      say(`native transport from the prebuild ${found.file}: nothing to build`);
      return;
    }
    why = found.why;
  }
  const prefix = why ? `${why}; ` : '';
  const cxx = compiler();
  if (!cxx) {
    say(`native addon not built (${prefix}no C++ compiler found): ${fallback}`);
    return;
  }
  try {
    fs.rmSync(logFile, { force: true });
  } catch {
    // a log from an earlier run is harmless
  }
  const where = path.relative(process.cwd(), logFile);
  if (has('cmake')) {
    const tools = buildTools(['cmake-js', 'node-addon-api']);
    if (!tools) {
      say(`native addon not built (${prefix}the build tools could not be installed; log in ${where}): ${fallback}`);
      return;
    }
    try {
      const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: tools.paths });
      if (run('cmake-js compile', process.execPath, [cmakeJs, 'compile'], tools.env) && loads()) {
        say(`native transport built with cmake-js${why ? ` (${why})` : ''}`);
        return;
      }
    } finally {
      tools.cleanup();
    }
    say(`native addon build with cmake-js failed (${prefix}log in ${where}): ${fallback}`);
    return;
  }
  const gyp = nodeGyp();
  if (!gyp) {
    say(`native addon not built (${prefix}no CMake and no node-gyp): ${fallback}`);
    return;
  }
  const tools = buildTools(['node-addon-api']);
  if (!tools) {
    say(`native addon not built (${prefix}node-addon-api could not be installed; log in ${where}): ${fallback}`);
    return;
  }
  try {
    if (run('node-gyp rebuild', process.execPath, [gyp, 'rebuild'], tools.env) && loads()) {
      say(`native transport built with node-gyp (no CMake found${why ? `; ${why}` : ''})`);
      return;
    }
  } finally {
    tools.cleanup();
  }
  say(`native addon not built (${prefix}no CMake, node-gyp failed; log in ${where}): ${fallback}`);
}

try {
  main();
} catch (err) {
  say(`native addon not built (${err && err.message}): the JS transport will be used`);
}
