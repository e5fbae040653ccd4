#!/usr/bin/env node
// `npm run check:readme`: every fenced code block of README.md runs as written.
//
// The package is packed and installed (scripts not run) in a scratch project, with the addon this
// checkout built copied where `npm install` would have built it, so `require('iottly-sdk')` and
// `import ... from 'iottly-sdk'` resolve as in an application. Then, block by block:
//
// - `js` blocks run as ES modules when they use `import`/`export`, else as CommonJS (`mjs`/`cjs`
//   blocks as said). `ts` blocks are type-checked with the repository's TypeScript against the
//   package's published types (strict, `module: node16`), compiled, and the JavaScript is run.
// - `sh` blocks run line by line (`sh -c` in the scratch project; `npx` finds the package's bin).
// - A block whose first line is a comment naming a file (`// logs.js: ...`) is written under that
//   name before any block runs, so that other blocks can use it as a module (`require.resolve('./logs.js')`).
// - Socket paths: the agent's default path `/var/run/iottly.com-agent/sdk/iottly_sdk_socket` is
//   replaced with a temporary socket on which the package's simulator listens for that block, and
//   `/tmp/iottly.sock` (the simulator examples' path) with a fresh temporary path nothing listens on.
// - A block must exit 0 by itself within RUN_MS, or else it is taken for a long-running app: it must
//   have linked with the simulator (when it uses the agent's path), then gets SIGTERM and must exit
//   within EXIT_MS (with status 0, or killed by that SIGTERM). The simulator must have received no
//   error frame (a callback that threw) and no invalid frame.
// - Blocks with `<!-- fragment -->` on the line before the fence are skipped; so are blocks with
//   `<!-- not run: REASON -->`, whose reason is printed (e.g. `npm test`, which CI runs itself).
//
// Options: --link (symlink the checkout instead of packing it; quicker while editing the README),
// --keep (keep the scratch project), --line N (only the block whose fence is on line N, plus the
// named modules), --readme FILE (check another Markdown file, e.g. to try the checker on a known
// failure). Times scale with IOTTLY_TEST_SLOWDOWN.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const slowdown = Number(process.env.IOTTLY_TEST_SLOWDOWN) || 1;
const RUN_MS = 3000 * slowdown;
const LINK_MS = 5000 * slowdown;
const EXIT_MS = 6000 * slowdown;
const AGENT_SOCKET = '/var/run/iottly.com-agent/sdk/iottly_sdk_socket';
const SIM_SOCKET = '/tmp/iottly.sock';

const args = process.argv.slice(2);
const link = args.includes('--link');
const keep = args.includes('--keep');
const onlyLine = args.includes('--line') ? Number(args[args.indexOf('--line') + 1]) : null;
const readmePath = args.includes('--readme') ? args[args.indexOf('--readme') + 1] : join(root, 'README.md');

function say(line) {
  process.stdout.write(`readme: ${line}\n`);
}

/** The fenced blocks of README.md: fence line, language, code, marker and file name if any. */
export function readmeBlocks(text) {
  const lines = text.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    if (end >= lines.length) throw new Error(`README.md:${i + 1}: the fence is never closed`);
    const code = lines.slice(i + 1, end).join('\n') + '\n';
    const before = i > 0 ? lines[i - 1].trim() : '';
    const notRun = /^<!--\s*not run:\s*(.+?)\s*-->$/.exec(before);
    const name = /^\/\/ ([\w.-]+\.(?:[cm]?js|[cm]?ts))\b/.exec(code);
    blocks.push({
      line: i + 1,
      lang: open[1],
      code,
      fragment: /^<!--\s*fragment\s*-->$/.test(before),
      notRun: notRun ? notRun[1] : null,
      name: name ? name[1] : null,
    });
    i = end;
  }
  return blocks;
}

/** A scratch project with the package installed as an application would have it. */
function project(work) {
  const dir = join(work, 'app');
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "name": "readme-blocks", "version": "1.0.0", "private": true }\n');
  const pkg = join(dir, 'node_modules', 'iottly-sdk');
  if (link) {
    symlinkSync(root, pkg);
  } else {
    const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop();
    // --ignore-scripts: no build in here; the addon of this checkout is copied below instead.
    execFileSync('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', join(work, tarball)], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const built = join(root, 'build', 'Release', 'iottly_native.node');
    if (existsSync(built)) {
      mkdirSync(join(pkg, 'build', 'Release'), { recursive: true });
      copyFileSync(built, join(pkg, 'build', 'Release', 'iottly_native.node'));
    }
  }
  return dir;
}

/** The temporary socket that stands for the agent's path in `block`, and for /tmp/iottly.sock in its n-th command. */
function agentSocket(work, block) {
  return join(work, `agent-${block.line}`, 'agent.sock');
}
function simSocket(work, block, n = 0) {
  return join(work, `sim-${block.line}-${n}`, 'agent.sock');
}
function withSockets(text, work, block, n = 0) {
  return text.split(AGENT_SOCKET).join(agentSocket(work, block)).split(SIM_SOCKET).join(simSocket(work, block, n));
}

function fileFor(block) {
  if (block.name) return block.name;
  const ext = { ts: 'ts', mjs: 'mjs', cjs: 'cjs', sh: 'sh' }[block.lang];
  if (ext) return `block-${block.line}.${ext}`;
  const esm = /^\s*(import\s[^(]|export\s)/m.test(block.code);
  return `block-${block.line}.${esm ? 'mjs' : 'cjs'}`;
}

/** Type-checks and compiles the TypeScript blocks; returns the diagnostics of each file. */
function compileTs(dir, files) {
  if (files.length === 0) return new Map();
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(
    process.execPath,
    // The repository's @types/node: a symlink in the project would let an `npm install` there prune it.
    [tsc, '--strict', '--module', 'node16', '--target', 'es2022', '--types', 'node', '--typeRoots', join(root, 'node_modules', '@types'), '--skipLibCheck', '--pretty', 'false', ...files],
    { cwd: dir, encoding: 'utf8' },
  );
  const byFile = new Map();
  for (const line of r.stdout.split('\n')) {
    const m = /^([^(]+)\(\d+,\d+\): error/.exec(line);
    if (m) byFile.set(m[1], [...(byFile.get(m[1]) ?? []), line]);
  }
  if (r.status !== 0 && byFile.size === 0) byFile.set(files[0], [r.stdout + r.stderr]);
  return byFile;
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs one command in its own process group: exit by itself, or SIGTERM once it has linked (if it
 * should), then the deadline. Returns what happened.
 */
async function runProcess(cmd, argv, { cwd, linked }) {
  const child = spawn(cmd, argv, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const started = Date.now();
  const killGroup = (sig) => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      // already gone
    }
  };
  let result = await Promise.race([exited, delay(RUN_MS).then(() => null)]);
  if (result) {
    killGroup('SIGKILL'); // anything it left behind
    return { ...result, output, ms: Date.now() - started, terminated: false };
  }
  if (linked) {
    const deadline = Date.now() + LINK_MS;
    while (!linked() && Date.now() < deadline) {
      result = await Promise.race([exited, delay(50).then(() => null)]);
      if (result) return { ...result, output, ms: Date.now() - started, terminated: false };
    }
    if (!linked()) {
      killGroup('SIGKILL');
      await exited;
      return { code: null, signal: 'SIGKILL', output, problem: `still running after ${(RUN_MS + LINK_MS) / 1000} s and never linked with the simulator` };
    }
  }
  const termAt = Date.now();
  killGroup('SIGTERM');
  result = await Promise.race([exited, delay(EXIT_MS).then(() => null)]);
  if (!result) {
    killGroup('SIGKILL');
    await exited;
    return { code: null, signal: 'SIGKILL', output, problem: `did not exit within ${EXIT_MS / 1000} s of SIGTERM` };
  }
  killGroup('SIGKILL');
  return { ...result, output, ms: Date.now() - termAt, terminated: true };
}

function judge(r) {
  if (r.problem) return r.problem;
  if (r.terminated) {
    if (r.code === 0 || r.signal === 'SIGTERM') return null;
    return `exited with ${r.code ?? r.signal} after SIGTERM`;
  }
  if (r.code !== 0) return `exited with ${r.code ?? r.signal}`;
  return null;
}

function describeRun(r) {
  if (r.terminated) return `long-running; SIGTERM, ${r.signal === 'SIGTERM' ? 'killed by it (no handler)' : 'exited 0'} in ${r.ms} ms`;
  return `ran to completion in ${r.ms} ms`;
}

async function runBlock(block, dir, work, sdk) {
  const file = join(dir, fileFor(block).replace(/\.ts$/, '.js').replace(/\.mts$/, '.mjs').replace(/\.cts$/, '.cjs'));
  const usesAgent = block.code.includes(AGENT_SOCKET);
  let sim = null;
  if (usesAgent) {
    sim = new sdk.AgentSimulator({ socketPath: agentSocket(work, block) });
    await sim.listen();
  }
  let hellos = 0;
  sim?.on('hello', () => hellos++);
  try {
    if (block.lang === 'sh') {
      const lines = block.code.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
      const parts = [];
      for (const [i, line] of lines.entries()) {
        const cmd = withSockets(line, work, block, i);
        const r = await runProcess('sh', ['-c', cmd], { cwd: dir, linked: sim ? () => hellos > 0 : null });
        const problem = judge(r);
        if (problem) return { problem: `\`${line.trim()}\`: ${problem}`, output: r.output };
        parts.push(r.terminated ? 'SIGTERM' : 'done');
      }
      return { note: `${lines.length} commands (${parts.join(', ')})` };
    }
    const argv = [file];
    const r = await runProcess(process.execPath, argv, { cwd: dir, linked: sim ? () => hellos > 0 : null });
    const problem = judge(r);
    if (problem) return { problem, output: r.output };
    if (sim && sim.errors.length) {
      return { problem: `a callback failed (error frames to the agent: ${sim.errors.map((e) => `${e.type}: ${e.msg}`).join('; ')})`, output: r.output };
    }
    if (sim && sim.invalid.length) {
      return { problem: `the agent got invalid frames: ${sim.invalid.map((e) => `${e.reason} (${e.raw.slice(0, 80)})`).join('; ')}`, output: r.output };
    }
    return { note: describeRun(r) + (sim ? `; linked with the simulator (${sim.telemetry.length} telemetry, ${sim.calls.length} calls)` : '') };
  } finally {
    await sim?.close();
  }
}

async function main() {
  const readme = readFileSync(readmePath, 'utf8');
  const blocks = readmeBlocks(readme);
  const readmeName = relative(root, readmePath) || readmePath;
  const work = mkdtempSync(join(tmpdir(), 'iottly-readme-'));
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  try {
    say(`${blocks.length} code blocks; ${link ? 'linking' : 'packing'} the package into ${work}`);
    const dir = project(work);
    const appRequire = createRequire(join(dir, 'package.json'));
    const sdk = { ...appRequire('iottly-sdk'), ...appRequire('iottly-sdk/sim') };
    say(`transport: ${sdk.defaultTransport()}${sdk.nativeAvailable() ? '' : ` (${sdk.nativeLoadError()?.message})`}`);

    const runnable = [];
    for (const block of blocks) {
      const where = `${readmeName}:${block.line} ${block.lang || '(no language)'}`;
      if (onlyLine !== null && block.line !== onlyLine && !block.name) continue;
      if (block.fragment) {
        say(`${where}: skipped (fragment)`);
        skipped++;
      } else if (block.notRun) {
        say(`${where}: not run: ${block.notRun}`);
        skipped++;
      } else if (!['js', 'mjs', 'cjs', 'ts', 'sh'].includes(block.lang)) {
        say(`${where}: not code (${block.lang || 'no language'}), not run`);
        skipped++;
      } else {
        writeFileSync(join(dir, fileFor(block)), withSockets(block.code, work, block));
        runnable.push(block);
      }
    }
    const tsFiles = runnable.filter((b) => b.lang === 'ts').map(fileFor);
    const diagnostics = compileTs(dir, tsFiles);

    for (const block of runnable) {
      const where = `${readmeName}:${block.line} ${block.lang}${block.name ? ` (${block.name})` : ''}`;
      const errors = diagnostics.get(fileFor(block));
      let outcome;
      if (errors) outcome = { problem: `does not type-check:\n${errors.join('\n')}` };
      else outcome = await runBlock(block, dir, work, sdk);
      if (outcome.problem) {
        failed++;
        say(`${where}: FAIL: ${outcome.problem}`);
        if (outcome.output) process.stdout.write(outcome.output.replace(/^/gm, '    | ') + '\n');
      } else {
        passed++;
        say(`${where}: ok, ${outcome.note}`);
      }
    }
    const left = readdirSync(dir).filter((f) => f.endsWith('.sock'));
    if (left.length) say(`sockets left in the project: ${left.join(', ')}`);
  } finally {
    if (keep) say(`kept ${relative(process.cwd(), work) || work}`);
    else rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(`readme: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`readme: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  });
}
