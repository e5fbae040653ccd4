// iottly-sdk-bench as a user runs it: bin/iottly-sdk-bench.js in a real process, against the
// simulator it starts itself, against an "agent" given with --socket (a simulator this test runs),
// and with every kind of bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentSimulator, SLOWDOWN, transports } from './helpers.mjs';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'iottly-sdk-bench.js');
const SENDERS = transports().map((t) => `sdk-${t}`);

/** Runs the command; resolves with { code, stdout, stderr }. */
function bench(args, { cwd = ROOT, timeoutMs = 60_000 * SLOWDOWN } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`iottly-sdk-bench ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function scratch(t) {
  const dir = mkdtempSync(path.join(tmpdir(), 'iottly-bench-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const positive = (x, what) => assert.ok(Number.isFinite(x) && x > 0, `${what} is ${x}, not a finite positive number`);
const nonNegative = (x, what) => assert.ok(Number.isFinite(x) && x >= 0, `${what} is ${x}, not finite and >= 0`);

test('a short run against the bundled simulator: every sender, everything delivered (--json)', async () => {
  const r = await bench(['--rate', '200', '--seconds', '1', '--burst', '2000', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.tool, 'iottly-sdk-bench');
  assert.deepEqual(doc.transports.available, transports());
  assert.deepEqual(doc.run.senders, [...SENDERS, 'naive', 'stringify']);
  assert.equal(doc.agent.kind, 'simulator');
  assert.equal(doc.agent.counted, true);
  assert.deepEqual(doc.failures, []);
  assert.deepEqual(doc.warnings, []);
  assert.ok(doc.board.cores >= 1 && typeof doc.board.cpuModel === 'string' && doc.board.node === process.version);
  if (doc.transports.native.loads) assert.match(doc.transports.native.origin, /^(local build|prebuild|IOTTLY_SDK_NATIVE_PATH)$/);

  for (const sender of [...SENDERS, 'naive']) {
    const paced = doc.paced.find((p) => p.sender === sender && p.rate === 200);
    assert.ok(paced, `no paced row for ${sender}`);
    const m = paced.median;
    assert.equal(m.sent, 200, `${sender} sent`);
    if (sender !== 'naive') {
      assert.equal(m.delivered, m.sent, `${sender}: delivered ${m.delivered} of ${m.sent}`);
      assert.equal(m.dropped, 0);
    }
    for (const key of ['cpuUsPerMsg', 'cpuPctOfCore', 'rssPeakMB']) positive(m[key], `${sender} paced ${key}`);
    for (const key of ['loopDelayP50Ms', 'loopDelayP99Ms', 'loopDelayMaxMs']) nonNegative(m[key], `${sender} paced ${key}`);

    const burst = doc.burst.find((b) => b.sender === sender);
    assert.ok(burst, `no burst row for ${sender}`);
    const b = burst.median;
    assert.equal(b.count, 2000);
    if (sender !== 'naive') assert.equal(b.delivered, 2000, `${sender}: burst delivered ${b.delivered} of 2000`);
    for (const key of ['sendLoopMs', 'drainedMs', 'deliveredMs', 'deliveredPerSec', 'cpuUsPerMsg', 'rssPeakMB']) {
      positive(b[key], `${sender} burst ${key}`);
    }
    // No order between deliveredMs and sendLoopMs is promised: when the kernel takes every write at
    // once (naive node:net, the native I/O thread), the agent can read the last message before the
    // sending loop has returned, if the sender is descheduled there. A deliveredMs counted from the
    // wrong moment (the mark before the burst) is not positive, which the check above catches.
    positive(burst.vsNaive, `${sender} vsNaive`);
  }
  positive(doc.ceiling.perSec, 'ceiling perSec');
  positive(doc.ceiling.cpuUsPerMsg, 'ceiling cpuUsPerMsg');
  // Progress on stderr, one line per step; nothing but the document on stdout.
  for (const s of ['SDK js', 'naive node:net', 'JSON.stringify only']) assert.match(r.stderr, new RegExp(`\\] ${s}: `));
  assert.match(r.stderr, /^iottly-sdk-bench: done in /m);
});

test('--socket with --channel: a user-named agent, every message counted there, on the channel, loudly said', async (t) => {
  const dir = scratch(t);
  const socketPath = path.join(dir, 'agent.sock');
  const sim = new AgentSimulator({ socketPath, keepFrames: false });
  const channels = new Set();
  const names = new Set();
  sim.on('telemetry', (rec) => {
    channels.add(rec.channel);
    names.add(rec.name);
  });
  await sim.listen();
  t.after(() => sim.close());
  const samples = path.join(dir, 'samples.json');
  writeFileSync(samples, JSON.stringify([{ temp: 21.5 }, { temp: 21.6, door: 'open' }, { vib: [1, 2, 3] }]));

  const r = await bench(['--socket', socketPath, '--channel', 'bench-test', '--payload', samples, '--rate', '100', '--seconds', '0.5', '--burst', '300', '--rounds', '2']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /MEASURING AGAINST THE REAL AGENT at .*agent\.sock/);
  assert.match(r.stderr, /go to channel "bench-test"/);
  assert.match(r.stdout, /agent: THE REAL AGENT at .*, channel "bench-test"/);
  assert.match(r.stdout, /payload: .*samples\.json, 3 messages sent in turn/);
  assert.match(r.stdout, /median of 2 rounds/);
  for (const s of ['SDK js', 'naive node:net', 'JSON.stringify only', ...(SENDERS.includes('sdk-native') ? ['SDK native'] : [])]) {
    assert.match(r.stdout, new RegExp(`^(\\d[\\d ]*)?\\s*${s} `, 'm'), `no row for ${s}`);
  }
  for (const line of r.stdout.split('\n')) assert.ok(line.length <= 100, `line over 100 columns: ${JSON.stringify(line)}`);
  // Each sender, each round: its warm-up, 50 paced and the burst of 300.
  const warmup = 300;
  const perSender = warmup + 50 + 300;
  assert.equal(sim.counts.telemetry, perSender * (SENDERS.length + 1) * 2);
  assert.deepEqual([...channels], ['bench-test']);
  assert.deepEqual([...names], ['iottly-sdk-bench']);
  assert.equal(sim.counts.invalid, 0);
});

test('bad input: exit code 2 and a message that names the problem', async (t) => {
  const dir = scratch(t);
  const file = (name, text) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  mkdirSync(path.join(dir, 'adir'));
  const cases = [
    [['--payload', file('bad.json', '{"temp": 21.5,')], /--payload .*bad\.json: not JSON/],
    [['--payload', file('num.json', '42')], /num\.json: holds a number; it must hold one message object or an array/],
    [['--payload', file('str.json', '"hello"')], /str\.json: holds a string/],
    [['--payload', file('null.json', 'null')], /null\.json: holds null/],
    [['--payload', file('empty.json', '[]')], /empty\.json: the array is empty/],
    [['--payload', file('mixed.json', '[{"a":1}, 7]')], /mixed\.json: element 1 of the array is a number, not a message object/],
    [['--payload', file('blank.json', '')], /blank\.json: the file is empty/],
    [['--payload', file('big.json', JSON.stringify({ s: 'x'.repeat(1024 * 1024) }))], /big\.json: the message makes a telemetry frame of \d+ bytes, over the 1 MiB frame limit/],
    [['--payload', file('bigone.json', JSON.stringify([{ a: 1 }, { s: 'y'.repeat(1024 * 1024) }]))], /bigone\.json: element 1 makes a telemetry frame/],
    [['--payload', path.join(dir, 'missing.json')], /missing\.json: no such file/],
    [['--payload', path.join(dir, 'adir')], /adir: is a directory/],
    [['--rat', '100'], /unknown flag --rat; did you mean --rate\?/],
    [['--burts', '100'], /unknown flag --burts; did you mean --burst\?/],
    [['--jsn'], /unknown flag --jsn; did you mean --json\?/],
    [['--frobnicate'], /unknown flag --frobnicate \(see --help\)/],
    [['extra'], /unexpected argument "extra"/],
    [['--rate', 'fast'], /--rate must be a whole number of messages per second from 1 to \d+, got "fast"/],
    [['--rate', '0'], /--rate must be a whole number .* got "0"/],
    [['--rate', '100,x'], /--rate must be a whole number .* got "x"/],
    [['--rate'], /--rate needs a value/],
    [['--rate', '100', '--seconds', '-1'], /--seconds must be a number of seconds above 0/],
    [['--rate', '100', '--seconds', 'ten'], /--seconds must be a number of seconds above 0 .* got "ten"/],
    [['--burst', '1e3'], /--burst must be a whole number of messages .* got "1e3"/],
    [['--rounds', '0'], /--rounds must be a whole number of rounds from 1/],
    [['--max-queue-bytes', '10'], /--max-queue-bytes must be a whole number of bytes from 1024/],
    [['--burst', '100', '--seconds', '2'], /--seconds sets how long each --rate runs; give --rate too/],
    [['--json=yes'], /--json takes no value/],
    [['--socket', path.join(dir, 'agent.sock')], /--socket needs --channel NAME/],
    [['--socket', path.join(dir, 'nothing.sock'), '--channel', 'x'], /--socket .*nothing\.sock: no such file; is the agent running/],
    [['--socket', path.join(dir, 'num.json'), '--channel', 'x'], /--socket .*num\.json: not a socket/],
    [['--channel', ''], /--channel must not be empty/],
  ];
  const results = await Promise.all(cases.map(([args]) => bench(args, { cwd: dir })));
  results.forEach((r, i) => {
    const [args, message] = cases[i];
    assert.equal(r.code, 2, `${args.join(' ')}: exit code ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, message, `${args.join(' ')}`);
    assert.match(r.stderr, /^iottly-sdk-bench: /);
    assert.equal(r.stdout, '', `${args.join(' ')} printed on stdout`);
  });
});

test('--help explains every flag and its default; --version prints the package version', async () => {
  const r = await bench(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: iottly-sdk-bench \[options\]/);
  for (const flag of ['--rate', '--seconds', '--burst', '--payload', '--rounds', '--max-queue-bytes', '--socket', '--channel', '--json', '--version', '--help']) {
    assert.match(r.stdout, new RegExp(`^  (-h, )?${flag}\\b`, 'm'), `--help does not explain ${flag}`);
  }
  assert.match(r.stdout, /default 10 with --rate/);
  assert.match(r.stdout, /100 and 1000 msg\/s/);
  assert.doesNotMatch(r.stdout, /internal/);
  for (const line of r.stdout.split('\n')) assert.ok(line.length <= 100, `help line over 100 columns: ${line}`);
  const v = await bench(['--version']);
  assert.equal(v.code, 0);
  const { version } = JSON.parse((await import('node:fs')).readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(v.stdout.trim(), version);
});
