// stop() right after linking, over and over: the agent answers each hello with its sdkinit while the
// SDK is already flushing and saying goodbye. Whatever the SDK counted as written must reach the
// agent, and the goodbye with it, on every connection.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { transports, startSim, makeSDK, waitFor } from './helpers.mjs';

const CYCLES = 300;

for (const transport of transports()) {
  describe(`stop() right after linking [${transport}]`, () => {
    test(`${CYCLES} start/send/stop cycles: every message and every goodbye reach the agent`, async (t) => {
      // The agent answers each hello a millisecond later, as a busy agent does: its sdkinit then
      // arrives while the SDK is stopping.
      const sim = await startSim(t, { keepFrames: true, sdkinitDelayMs: 1 });
      const client = makeSDK(t, transport, sim.socketPath, { handshakeTimeoutMs: 50, reconnectIntervalMs: 10_000 });
      for (let i = 0; i < CYCLES; i++) {
        client.start();
        await waitFor(() => client.linked, `link #${i}`);
        client.send({ cycle: i });
        await client.stop();
      }
      const s = client.stats();
      assert.equal(s.written, CYCLES, 'the SDK counts every message as written');
      await waitFor(() => sim.counts.connections === CYCLES && sim.clients.length === 0, 'every connection closed at the agent');
      const seen = new Map();
      for (const { client: c, frame } of sim.frames) {
        const status = frame.signal?.sdkclient?.status;
        const mark = status === 'connected' ? 'H' : status === 'disconnected' ? 'G' : frame.data ? 'T' : '?';
        seen.set(c.id, (seen.get(c.id) ?? '') + mark);
      }
      const short = [...seen.entries()].filter(([, marks]) => marks !== 'HTG');
      t.diagnostic(`telemetry ${sim.counts.telemetry}, goodbyes ${sim.counts.goodbyes}, connections not hello-telemetry-goodbye: ${short.length}`);
      assert.deepEqual(short.slice(0, 5), [], 'each connection carried hello, the message, goodbye');
      assert.equal(sim.counts.telemetry, CYCLES);
      assert.equal(sim.counts.goodbyes, CYCLES);
    });
  });
}
