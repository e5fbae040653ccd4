'use strict';
// Drives the native transport through its life for scripts/ci/valgrind.sh: no agent (connect errors),
// an agent appears (connect, hello, sdkinit), telemetry, a command, a call, the agent killed and
// restarted (reconnect), the agent stopping gracefully, start/stop cycles, and a final stop. The
// agent runs in a child process that valgrind does not trace. Exits 0 when every step was seen.
const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { IottlySDK, nativeAvailable, nativeLoadError } = require('../../dist/index.js');

const AGENT = `
const { AgentSimulator } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist', 'sim', 'index.js'))});
const sim = new AgentSimulator({ socketPath: process.argv[1], keepFrames: false });
sim.on('telemetry', () => {});
sim.listen().then(() => process.send('listening'));
process.on('message', async (m) => {
  if (m === 'command') sim.pushCommand('ping', { n: 1 });
  if (m === 'reboot') { await sim.reboot({ downMs: 100 }); process.send('rebooted'); }
  if (m === 'counts') process.send({ counts: sim.counts });
});
process.on('disconnect', () => process.exit(0));
`;

const deadlineMs = Number(process.env.VALGRIND_STEP_MS || 120_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iottly-valgrind-'));
const socketPath = path.join(dir, 'agent.sock');
let agent = null;

const log = (line) => process.stdout.write(`valgrind-drive: ${line}\n`);
async function until(pred, what) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > deadlineMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
function startAgent() {
  const child = fork('-e', [AGENT, socketPath], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  // fork() with '-e' as the module: node runs the code given after it.
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`agent exited ${code}`)));
  });
}
function ask(child, msg, reply) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (reply(m)) {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
    child.send(msg);
  });
}

async function main() {
  if (!nativeAvailable()) throw new Error(`the native addon does not load: ${nativeLoadError()?.message}`);
  const statuses = [];
  let pings = 0;
  const sdk = new IottlySDK('valgrind', { socketPath, transport: 'native', reconnectIntervalMs: 100, handshakeTimeoutMs: 5000 });
  sdk.on('agentStatus', (s) => statuses.push(s));
  sdk.subscribe('ping', () => pings++);
  const started = () => statuses.filter((s) => s === 'started').length;

  sdk.start();
  await until(() => sdk.stats().connectErrors >= 2, 'connect errors with no agent');
  for (let i = 0; i < 50; i++) sdk.send({ queued: i });
  log('no agent: connect errors seen, messages buffered');

  agent = await startAgent();
  await until(() => started() === 1, "'started'");
  for (let i = 0; i < 5000; i++) sdk.send({ seq: i, pad: 'x'.repeat(i % 200) });
  agent.send('command');
  await until(() => pings === 1, 'the command');
  sdk.callAgent('script', { a: 1 });
  await until(() => sdk.stats().buffered === 0, 'the queue flushed');
  log(`linked: ${sdk.stats().written} written, a command and a call`);

  agent.kill('SIGKILL');
  await until(() => statuses.includes('stopped'), "'stopped' after the kill");
  for (let i = 0; i < 50; i++) sdk.send({ away: i });
  agent = await startAgent();
  await until(() => started() === 2, "'started' after the restart");
  log('agent killed and restarted: reconnected');

  const rebooted = ask(agent, 'reboot', (m) => m === 'rebooted');
  for (let i = 0; i < 200; i++) sdk.send({ during: i });
  await rebooted;
  await until(() => started() === 3, "'started' after the graceful restart");
  log('graceful restart: reconnected');

  await sdk.stop();
  for (let i = 0; i < 20; i++) {
    sdk.start();
    await until(() => sdk.linked, `link in cycle ${i}`);
    sdk.send({ cycle: i });
    await sdk.stop();
  }
  log('20 start/stop cycles');
  const { counts } = await ask(agent, 'counts', (m) => m && m.counts);
  log(`agent counts: ${JSON.stringify(counts)}; sdk stats: ${JSON.stringify(sdk.stats())}`);
}

main()
  .then(
    () => 0,
    (err) => {
      process.stderr.write(`valgrind-drive: ${err.stack}\n`);
      return 1;
    },
  )
  .then((code) => {
    if (agent) agent.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    process.exitCode = code;
  });
