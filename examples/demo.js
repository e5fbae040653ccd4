'use strict';
// `npm start`: a telemetry app on the SDK talking to the bundled agent simulator for a few seconds.
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { IottlySDK } = require('../dist/index.js');
const { AgentSimulator } = require('../dist/sim/index.js');

const RUN_MS = Number(process.env.DEMO_MS || 6000);
const RATE = 5000; // messages per second the app sends

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'iottly-demo-'));
  const socketPath = join(dir, 'agent.sock');
  const sim = new AgentSimulator({ socketPath, keepFrames: false, connectionStatusOnHello: 'connected' });
  await sim.listen();

  const events = [];
  const sdk = new IottlySDK('demo-logger', {
    socketPath,
    maxBufferedMsgs: 10000, // room for a scheduled agent reboot at this rate
    onAgentStatusChanged: (status) => events.push(`agent ${status}`),
    onConnectionStatusChanged: (status) => events.push(`mqtt ${status}`),
  });
  let interval = 1;
  sdk.subscribe('set_interval', (params) => {
    interval = Number(params.seconds) || interval;
    sdk.send({ ack: 'set_interval', seconds: interval }, 'acks');
    events.push(`command set_interval ${JSON.stringify(params)}`);
  });
  sim.on('telemetry', (rec) => {
    if (rec.channel === 'acks') events.push(`agent got ack ${JSON.stringify(rec.payload)}`);
  });
  sdk.start();

  // Send RATE messages a second in 10 ms slices, with a sequence number and a fake sensor reading.
  let seq = 0;
  const started = Date.now();
  const sender = setInterval(() => {
    const due = Math.floor(((Date.now() - started) / 1000) * RATE);
    while (seq < due) sdk.send({ seq: seq++, temp: 20 + Math.sin(seq / 500) * 5, ts: Date.now() });
  }, 10);

  const tty = process.stdout.isTTY;
  let lastCount = 0;
  let lastTime = Date.now();
  const status = setInterval(() => {
    const now = Date.now();
    const got = sim.counts.telemetry;
    const rate = Math.round(((got - lastCount) * 1000) / (now - lastTime));
    lastCount = got;
    lastTime = now;
    const s = sdk.stats();
    for (const e of events.splice(0)) process.stdout.write(`${tty ? '\r\x1b[K' : ''}  ${e}\n`);
    const line =
      `transport=${s.transport}  linked=${sdk.linked ? 'yes' : 'no '}  delivered=${rate}/s  ` +
      `sent=${s.accepted}  buffered=${s.buffered}  dropped=${s.dropped.total}`;
    process.stdout.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
  }, tty ? 250 : 1000);

  setTimeout(() => sim.pushCommand('set_interval', { seconds: 5 }), 1000);
  setTimeout(() => void sim.flapMqtt(500), 2000);
  setTimeout(() => void sim.reboot({ downMs: 500 }), 3500);

  await new Promise((resolve) => setTimeout(resolve, RUN_MS));
  clearInterval(sender);
  await sdk.stop();
  clearInterval(status);
  await sim.waitFor(() => sim.counts.goodbyes > 0, 5000).catch(() => {});
  const s = sdk.stats();
  if (tty) process.stdout.write('\n');
  for (const e of events.splice(0)) console.log(`  ${e}`);
  console.log(
    `done: ${s.accepted} messages sent, ${sim.counts.telemetry} received by the simulator, ` +
      `${s.dropped.total} dropped, ${s.reconnects} reconnect(s), transport ${s.transport}`,
  );
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
