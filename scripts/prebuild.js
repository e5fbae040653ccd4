'use strict';
// `npm run prebuilds [-- target...]`: builds the native addon for linux-x64, linux-arm64 and
// linux-arm (default: all three) into prebuilds/<platform>-<arch>/, named the way prebuildify names
// Node-API builds, so that a board without a compiler still gets the native transport. (The script
// is not called "prebuild": npm would run that before every `npm run build`, so on every install.)
//
// The sources and flags are CMakeLists.txt's (cmake-js, as `npm run build:native`); the ARM targets
// use Debian's cross compilers through scripts/arm-toolchain.cmake. Node-API headers do not depend on
// the CPU, so no Node.js download is involved. Missing toolchains are installed with apt-get.
// `--check` builds nothing and fails unless every target's prebuild is there (prepublishOnly).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

/**
 * Each target: the directory and file name the loader (src/transport/addon.ts) looks for, the cross
 * compiler's triple (null: the host's compiler), the ELF machine and class a correct build has, and
 * the newest glibc / libstdc++ symbol versions it may need (the floor the README documents).
 */
const TARGETS = {
  'linux-x64': { file: 'node.napi.glibc.node', triple: null, hostArch: 'x64', machine: 62, bits: 64, objdump: 'objdump' },
  'linux-arm64': {
    file: 'node.napi.glibc.node',
    triple: 'aarch64-linux-gnu',
    machine: 183,
    bits: 64,
    objdump: 'aarch64-linux-gnu-objdump',
  },
  // armv7 tag: Node for ARMv6 (Pi Zero/1) must not load it, since ARMv7 code traps there instead of failing to load.
  'linux-arm': {
    file: 'node.napi.armv7.glibc.node',
    triple: 'arm-linux-gnueabihf',
    machine: 40,
    bits: 32,
    objdump: 'arm-linux-gnueabihf-objdump',
  },
};
const FLOOR = { GLIBC: '2.32', GLIBCXX: '3.4.29' };

function say(line) {
  process.stdout.write(`prebuild: ${line}\n`);
}

function fail(line) {
  process.stderr.write(`prebuild: ${line}\n`);
  process.exit(1);
}

function has(cmd) {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** ELF class and machine from the header, so a wrong compiler can never ship under another name. */
function elfIdentity(file) {
  const head = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.toString('latin1', 0, 4) !== '\x7fELF') return null;
  return { bits: head[4] === 2 ? 64 : 32, machine: head.readUInt16LE(18) };
}

/** The newest GLIBC_ and GLIBCXX_ symbol versions the shared object needs. */
function symbolFloor(objdump, file) {
  const r = spawnSync(objdump, ['-T', file], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.status !== 0) fail(`${objdump} -T ${file} failed: ${r.stderr || r.error}`);
  const newest = {};
  for (const [, lib, version] of r.stdout.matchAll(/\b(GLIBC|GLIBCXX)_([0-9.]+)\b/g)) {
    if (!newest[lib] || compareVersions(version, newest[lib]) > 0) newest[lib] = version;
  }
  return newest;
}

function build(name, target) {
  const out = path.join(root, 'build-prebuild', name);
  const args = [require.resolve('cmake-js/bin/cmake-js', { paths: [root] }), 'compile', '--out', out, '--parallel', '2'];
  // Stripped: the symbols only matter to a debugger, and boards have little storage.
  args.push('--CDCMAKE_SHARED_LINKER_FLAGS=-s');
  const env = { ...process.env };
  if (target.triple) {
    args.push(`--CDCMAKE_TOOLCHAIN_FILE=${path.join(__dirname, 'arm-toolchain.cmake')}`, `--CDIOTTLY_TRIPLE=${target.triple}`);
    env.IOTTLY_TRIPLE = target.triple; // CMake's compiler checks re-read the toolchain file without -D values
    // cmake-js would otherwise hand CMake the host compiler named by CXX / CC.
    delete env.CXX;
    delete env.CC;
  }
  const log = path.join(root, 'build-prebuild', `${name}.log`);
  fs.mkdirSync(path.dirname(log), { recursive: true });
  const r = spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  fs.writeFileSync(log, `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`);
  if (r.status !== 0) fail(`${name}: cmake-js failed (log in ${path.relative(process.cwd(), log)}):\n${fs.readFileSync(log, 'utf8').slice(-3000)}`);
  return path.join(out, 'Release', 'iottly_native.node');
}

function ensureToolchains(targets) {
  const missing = [];
  if (!has('cmake')) missing.push('cmake');
  for (const name of targets) {
    const t = TARGETS[name];
    if (t.triple && !has(`${t.triple}-g++`)) missing.push(`g++-${t.triple}`);
  }
  if (missing.length === 0) return;
  say(`installing ${missing.join(' ')}`);
  const r = spawnSync('bash', [path.join(__dirname, 'arm-setup.sh'), 'apt', ...missing], { stdio: 'inherit' });
  if (r.status !== 0) fail(`could not install ${missing.join(' ')}`);
}

/** Where a target's prebuild goes, relative to the package root. */
function prebuildPath(name) {
  return path.join('prebuilds', name, TARGETS[name].file);
}

/**
 * `--check`: every target's prebuild is in prebuilds/ and is an ELF for its CPU (run before
 * `npm publish`, so that no release goes out without them). Builds nothing.
 */
function check(targets) {
  const problems = [];
  for (const name of targets) {
    const file = path.join(root, prebuildPath(name));
    if (!fs.existsSync(file)) {
      problems.push(`${prebuildPath(name)} is missing`);
      continue;
    }
    const id = elfIdentity(file);
    const t = TARGETS[name];
    if (!id || id.machine !== t.machine || id.bits !== t.bits) problems.push(`${prebuildPath(name)} is not a ${t.bits}-bit ELF for machine ${t.machine}`);
  }
  if (problems.length) fail(`${problems.join('; ')}: run \`npm run prebuilds\` first`);
  say(`${targets.map(prebuildPath).join(', ')}: present`);
}

function main() {
  const targets = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  if (targets.length === 0) targets.push(...Object.keys(TARGETS));
  for (const name of targets) if (!TARGETS[name]) fail(`unknown target '${name}' (known: ${Object.keys(TARGETS).join(', ')})`);
  if (process.argv.includes('--check')) return check(targets);
  if (process.platform !== 'linux') fail('prebuilds are made on Linux');
  for (const name of targets) {
    if (!TARGETS[name].triple && process.arch !== TARGETS[name].hostArch) fail(`${name} needs a ${TARGETS[name].hostArch} host`);
  }
  ensureToolchains(targets);

  for (const name of targets) {
    const target = TARGETS[name];
    const started = Date.now();
    const built = build(name, target);
    const id = elfIdentity(built);
    if (!id || id.machine !== target.machine || id.bits !== target.bits) {
      fail(`${name}: ${built} is not a ${target.bits}-bit ELF for machine ${target.machine} (got ${JSON.stringify(id)})`);
    }
    const needs = symbolFloor(target.objdump, built);
    for (const lib of Object.keys(FLOOR)) {
      if (needs[lib] && compareVersions(needs[lib], FLOOR[lib]) > 0) {
        fail(
          `${name}: the addon now needs ${lib}_${needs[lib]}, newer than the ${lib}_${FLOOR[lib]} the README promises; ` +
            'avoid the new dependency or raise the floor in scripts/prebuild.js and the README together',
        );
      }
    }
    const dest = path.join(root, prebuildPath(name));
    fs.rmSync(path.dirname(dest), { recursive: true, force: true });
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(built, dest);
    const kb = Math.round(fs.statSync(dest).size / 1024);
    const floor = Object.entries(needs).map(([lib, v]) => `${lib}_${v}`).join(', ');
    say(`${path.relative(root, dest)} (${kb} KiB, needs ${floor}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}

if (require.main === module) main();
module.exports = { TARGETS, prebuildPath };
