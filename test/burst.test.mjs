// Bursts while linked: the maxBufferedMsgs bound applies only while the agent is away, so a
// synchronous burst at the default settings reaches a reading agent whole and in order, and the
// SDK's counters agree with what the agent counted.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { transports, startSim, makeSDK, startAndWait, waitFor, SLOWDOWN } from './helpers.mjs';

/** Checks telemetry order as it arrives (no per-frame records kept, so big bursts stay cheap). */
function sequenceChecker(sim) {
  const state = { next: 0, received: 0, outOfOrder: 0, firstBad: null };
  sim.on('telemetry', (rec) => {
    const seq = rec.payload.seq;
    if (seq !== state.next && state.firstBad === null) state.firstBad = { expected: state.next, got: seq };
    if (seq !== state.next) state.outOfOrder++;
    state.next = seq + 1;
    state.received++;
  });
  return state;
}

function assertCountersMatch(client, sim, n) {
  const s = client.stats();
  assert.equal(s.accepted, n);
  assert.equal(s.written, n);
  assert.equal(s.buffered, 0);
  assert.equal(s.bufferedBytes, 0);
  assert.deepEqual(s.dropped, { overflow: 0, stop: 0, total: 0 });
  assert.equal(sim.counts.telemetry, n);
  assert.equal(sim.counts.hellos, 1);
  assert.equal(sim.counts.invalid, 0);
  // Hello + telemetry: every byte the SDK says it wrote reached the agent, nothing more.
  assert.equal(s.bytesWritten, sim.counts.bytes);
}

for (const transport of transports()) {
  describe(`bursts while linked [${transport}]`, () => {
    test('a synchronous burst of 20 000 at the default maxBufferedMsgs arrives whole and in order', async (t) => {
      const sim = await startSim(t, { keepFrames: false });
      const seq = sequenceChecker(sim);
      const client = makeSDK(t, transport, sim.socketPath); // maxBufferedMsgs: default 10
      const drops = [];
      client.on('drop', (d) => drops.push(d));
      await startAndWait(client);

      const N = 20_000;
      for (let i = 0; i < N; i++) client.send({ seq: i, t: 'burst' });
      await waitFor(() => seq.received === N && client.stats().written === N, `${N} messages at the agent`);

      assert.equal(seq.outOfOrder, 0, `out of order: ${JSON.stringify(seq.firstBad)}`);
      assert.equal(seq.next, N);
      assertCountersMatch(client, sim, N);
      assert.equal(drops.length, 0);
    });

    test('a synchronous burst of 200 000 ~120-byte messages arrives whole and in order (queue bound raised)', async (t) => {
      const sim = await startSim(t, { keepFrames: false });
      const seq = sequenceChecker(sim);
      const N = 200_000;
      // ~24 MB queued in one synchronous loop, far past the default 4 MiB maxQueueBytes (which would
      // rightly drop the oldest); raising that bound must let all of it through.
      const client = makeSDK(t, transport, sim.socketPath, { maxQueueBytes: 64 * 1024 * 1024 });
      const drops = [];
      client.on('drop', (d) => drops.push(d));
      await startAndWait(client);

      const pad = 'x'.repeat(40);
      let frameBytes = 0;
      for (let i = 0; i < N; i++) client.send({ seq: i, pad, ts: 1700000000000 + i });
      frameBytes = client.stats().bufferedBytes + client.stats().bytesWritten;
      assert.ok(frameBytes / N >= 100, `frames are ~120 bytes (${(frameBytes / N).toFixed(1)})`);
      await waitFor(() => seq.received === N && client.stats().written === N, `${N} messages at the agent`, 30_000 * SLOWDOWN);

      assert.equal(seq.outOfOrder, 0, `out of order: ${JSON.stringify(seq.firstBad)}`);
      assertCountersMatch(client, sim, N);
      assert.equal(drops.length, 0);
    });

    test('a 200 000-message burst that honours send() === false / drain at default settings loses nothing', async (t) => {
      const sim = await startSim(t, { keepFrames: false });
      const seq = sequenceChecker(sim);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);

      const N = 200_000;
      const pad = 'x'.repeat(40);
      let i = 0;
      let pauses = 0;
      while (i < N) {
        let ok = true;
        while (i < N && ok) ok = client.send({ seq: i++, pad });
        if (i < N) {
          pauses++;
          await new Promise((resolve) => client.once('drain', resolve));
        }
      }
      await waitFor(() => seq.received === N && client.stats().written === N, `${N} messages at the agent`, 30_000 * SLOWDOWN);
      assert.ok(pauses > 0, 'send() asked to slow down at least once');
      assert.equal(seq.outOfOrder, 0, `out of order: ${JSON.stringify(seq.firstBad)}`);
      assertCountersMatch(client, sim, N);
    });
  });
}
