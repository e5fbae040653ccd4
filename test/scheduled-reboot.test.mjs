// A scheduled reboot of the agent ('stopping', it reads until the SDK goes quiet, closes, comes
// back) while the application sends at a steady rate: 'stopping' reaches the callback, the SDK
// stops writing so the agent can go down without cutting anything, and every message arrives
// exactly once, in order (or, with a small buffer, exactly the newest maxBufferedMsgs of the backlog).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { transports, startSim, makeSDK, startAndWait, waitFor, SLOWDOWN } from './helpers.mjs';

/** Send one message with an increasing seq every millisecond until stopped. */
function steadySender(client) {
  const state = { next: 0 };
  const timer = setInterval(() => client.send({ seq: state.next++ }), 1);
  state.stop = () => clearInterval(timer);
  return state;
}

const count = (list, x) => list.filter((y) => y === x).length;

/** Telemetry seqs grouped by connection, in connection order. */
function seqsByConnection(sim) {
  const byConn = new Map();
  for (const r of sim.telemetry) {
    if (!byConn.has(r.client)) byConn.set(r.client, []);
    byConn.get(r.client).push(r.payload.seq);
  }
  return [...byConn.entries()].sort((a, b) => a[0].id - b[0].id);
}

/**
 * After a reboot: wait for 'started' again and for traffic on the new connection, stop the sender
 * and wait until everything it sent has been delivered. Returns how many it sent.
 */
async function linkedAgainThenDrained(sim, client, sender) {
  await waitFor(() => count(client.statuses, 'started') === 2, "'started' after the reboot");
  const before = sim.counts.telemetry;
  await waitFor(() => sim.counts.telemetry >= before + 200, 'traffic after the reboot');
  sender.stop();
  const sent = sender.next;
  await waitFor(
    () => client.stats().buffered === 0 && sim.telemetry.at(-1)?.payload.seq === sent - 1,
    'everything sent delivered',
  );
  return sent;
}

for (const transport of transports()) {
  describe(`scheduled reboot of the agent [${transport}]`, () => {
    test("'stopping' reported, the SDK goes quiet, every message arrives exactly once and in order", async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { maxBufferedMsgs: 100_000 });
      await startAndWait(client);
      const sender = steadySender(client);
      t.after(() => sender.stop());
      await waitFor(() => sim.counts.telemetry >= 200, 'traffic before the reboot');

      // The agent waits for the SDK to go quiet (up to maxWaitMs); a sender at 1 message/ms is
      // never quiet, so only the SDK holding its writes after 'stopping' lets it go down early.
      const maxWaitMs = 5000 * SLOWDOWN;
      const t0 = Date.now();
      await sim.reboot({ quietMs: 100, downMs: 300, maxWaitMs });
      const rebootMs = Date.now() - t0;
      assert.ok(rebootMs < 300 + maxWaitMs - 1000 * SLOWDOWN, `the SDK went quiet after 'stopping' (reboot took ${rebootMs} ms)`);
      assert.equal(sim.invalid.length, 0, 'no frame was cut by the agent going down');

      const sent = await linkedAgainThenDrained(sim, client, sender);

      assert.deepEqual(client.statuses, ['started', 'stopping', 'stopped', 'started']);
      const seqs = sim.telemetry.map((r) => r.payload.seq);
      assert.equal(seqs.length, sent, `${sent} sent, ${seqs.length} arrived`);
      assert.ok(
        seqs.every((v, i) => v === i),
        'every seq exactly once, in order',
      );
      const conns = seqsByConnection(sim);
      assert.equal(conns.length, 2);
      for (const [c] of conns) assert.equal(c.helloFirst, true);
      // The messages sent during the downtime were held, then delivered on the new connection.
      const held = conns[1][1].length;
      assert.ok(held > 0);
      const s = client.stats();
      assert.equal(s.reconnects, 1);
      assert.deepEqual(s.dropped, { overflow: 0, stop: 0, total: 0 });
      assert.equal(s.written, sent);
      t.diagnostic(`reboot ${rebootMs} ms; ${sent} sent; ${conns[0][1].length} before, ${held} on the new connection`);
    });

    test('with a buffer smaller than the backlog: the newest maxBufferedMsgs of it arrive, in order, the rest counted', async (t) => {
      const sim = await startSim(t);
      const maxBufferedMsgs = 50;
      const client = makeSDK(t, transport, sim.socketPath, { maxBufferedMsgs });
      const drops = [];
      client.on('drop', (d) => drops.push(d));
      await startAndWait(client);
      const sender = steadySender(client);
      t.after(() => sender.stop());
      await waitFor(() => sim.counts.telemetry >= 100, 'traffic before the reboot');

      // Down for 300 ms at 1 message/ms: a backlog of several hundred, far over 50.
      await sim.reboot({ quietMs: 100, downMs: 300, maxWaitMs: 5000 * SLOWDOWN });
      const sent = await linkedAgainThenDrained(sim, client, sender);

      assert.ok(client.statuses.includes('stopping'));
      const seqs = sim.telemetry.map((r) => r.payload.seq);
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `in order at #${i}`);
      const s = client.stats();
      assert.ok(s.dropped.overflow > 0, 'the backlog exceeded the buffer');
      assert.equal(s.dropped.stop, 0);
      assert.equal(seqs.length + s.dropped.overflow, sent, 'every message either arrived or was counted dropped');
      // Exactly one gap: the oldest of the backlog. What the new connection opens with is exactly the
      // newest maxBufferedMsgs kept, then the live stream.
      const gaps = [];
      for (let i = 1; i < seqs.length; i++) if (seqs[i] !== seqs[i - 1] + 1) gaps.push(i);
      assert.equal(gaps.length, 1, `gaps at ${gaps.map((i) => `${seqs[i - 1]}->${seqs[i]}`).join(', ')}`);
      assert.equal(seqs[gaps[0]] - seqs[gaps[0] - 1] - 1, s.dropped.overflow);
      const [[, first], [secondConn, second]] = seqsByConnection(sim);
      assert.equal(first.at(-1), seqs[gaps[0] - 1], 'the gap is at the reboot');
      assert.equal(secondConn.helloFirst, true);
      assert.ok(second.length >= maxBufferedMsgs);
      await waitFor(
        () => drops.reduce((n, d) => n + (d.counts.overflow ?? 0), 0) === s.dropped.overflow,
        "'drop' events adding up to dropped.overflow",
      );
    });
  });
}
