'use strict';
// Child of bench/low-rate-instructions.js, run under callgrind: one sender linked to the agent
// stand-in sends one ~130 B message per 1 ms timer tick, `warm` ticks and then `ticks` more, and
// exits. The sender is idle (the timer alone), naive (node:net, one socket.write per message) or
// an SDK transport. One message per tick whatever the clock says: under valgrind the timer runs
// late, and a tick that caught up with two messages would measure a batch, not a lone message.
//
//   node bench/lib/tick-sender.js <idle|naive|js|native> <ticks> <warm>

const { startAgent } = require('./agent');
const u = require('./util');

const [sender, ticksArg, warmArg] = process.argv.slice(2);
const TICKS = Number(ticksArg);
const WARM = Number(warmArg);

function ticks(n, send, payload) {
  return new Promise((resolve) => {
    let i = 0;
    const timer = setInterval(() => {
      payload.seq = i;
      send(payload);
      if (++i >= n) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
}

(async () => {
  const agent = await startAgent();
  const payload = u.makePayload('small');
  let send = () => {};
  let close = async () => {};
  try {
    if (sender === 'naive') {
      const naive = await u.naiveClient(agent.socketPath);
      send = naive.send;
      close = naive.close;
    } else if (sender === 'js' || sender === 'native') {
      const sdk = await u.linkedSDK(sender, agent.socketPath);
      send = (msg) => sdk.send(msg);
      close = () => sdk.stop();
    } else if (sender !== 'idle') {
      throw new Error(`unknown sender ${sender}: idle, naive, js or native`);
    }
    await ticks(WARM, send, payload);
    await ticks(TICKS, send, payload);
    // Every message reached the agent (valgrind is slow: a generous deadline).
    const delivered = sender === 'idle' ? 0 : (await agent.expect(WARM + TICKS, 600_000)).lines;
    process.stdout.write(`${JSON.stringify({ sender, delivered })}\n`);
  } finally {
    await close();
    await agent.stop();
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
