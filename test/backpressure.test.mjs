// Backpressure against an agent that accepts the connection and does not read: send() stays quick
// and non-throwing, reports backpressure past highWaterMark, keeps queued bytes bounded by
// maxQueueBytes (dropping the oldest, counted and reported), and recovers with 'drain' and the
// newest messages in order once the agent reads. stop() against such an agent is bounded by
// stopTimeoutMs and counts what was left as dropped.stop.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { transports, makeSDK, waitFor, nextEvent, SLOWDOWN, startFrameAgent } from './helpers.mjs';

const seqs = (conn) => conn.frames.filter((f) => f.data).map((f) => f.data.payload.seq);
const PAD = 'p'.repeat(150); // frames of ~220 bytes

for (const transport of transports()) {
  describe(`backpressure against an agent that does not read [${transport}]`, () => {
    test("send() stays quick, reports backpressure, bounds the queue, drops the oldest; 'drain' and the newest in order once the agent reads", async (t) => {
      const agent = await startFrameAgent(t);
      const highWaterMark = 64 * 1024;
      const maxQueueBytes = 256 * 1024;
      const client = makeSDK(t, transport, agent.socketPath, { highWaterMark, maxQueueBytes, handshakeTimeoutMs: 50 });
      const drops = [];
      client.on('drop', (d) => drops.push(d));
      client.start();
      await waitFor(() => client.linked && agent.conns.length === 1, 'the SDK linked to the raw agent');

      const N = 100_000; // ~22 MB: far more than the queue bound plus anything the kernel holds
      const results = new Array(N);
      let slowest = 0;
      let maxBufferedBytes = 0;
      const t0 = performance.now();
      for (let i = 0; i < N; i++) {
        const a = performance.now();
        results[i] = client.send({ seq: i, pad: PAD });
        const d = performance.now() - a;
        if (d > slowest) slowest = d;
        if ((i & 255) === 0) maxBufferedBytes = Math.max(maxBufferedBytes, client.stats().bufferedBytes);
      }
      const total = performance.now() - t0;
      maxBufferedBytes = Math.max(maxBufferedBytes, client.stats().bufferedBytes);

      // Never blocks: the whole loop is quick and no single call stalls on the full socket.
      assert.ok(total < 5000 * SLOWDOWN, `${N} sends took ${total.toFixed(0)} ms`);
      assert.ok(slowest < 200 * SLOWDOWN, `slowest send() took ${slowest.toFixed(1)} ms`);

      // Backpressure: true at first, false from the point the queue passed highWaterMark on.
      const firstFalse = results.indexOf(false);
      assert.ok(firstFalse > 0, 'send() returned false at some point');
      // The message that returned false is the one that brought the queue to the mark.
      const frameSize = (seq) =>
        Buffer.byteLength(`{"data":{"sdkclient":{"name":"test-app"},"payload":${JSON.stringify({ seq, pad: PAD })}}}\n`);
      let upToFirstFalse = 0;
      for (let i = 0; i <= firstFalse; i++) upToFirstFalse += frameSize(i);
      assert.ok(upToFirstFalse >= highWaterMark, `false only at the high-water mark (at #${firstFalse})`);
      assert.ok(results.slice(0, firstFalse).every((r) => r === true));
      assert.ok(results.slice(firstFalse).every((r) => r === false), 'false while the agent still does not read');

      // Bounded: maxQueueBytes plus the writer's bounded in-flight window (the kernel's socket buffer
      // holds the rest); without the bound ~22 MB would be queued here.
      const slack = 1024 * 1024;
      assert.ok(maxBufferedBytes <= maxQueueBytes + slack, `queued bytes peaked at ${maxBufferedBytes}`);

      let s = client.stats();
      assert.equal(s.accepted, N);
      assert.ok(s.dropped.overflow > 0, 'the oldest were dropped');
      assert.ok(s.dropped.overflow < N);
      assert.equal(s.dropped.stop, 0);
      assert.equal(s.accepted, s.written + s.buffered + s.dropped.total, 'every accepted message is accounted for');
      await waitFor(() => drops.length >= 1, "a 'drop' event");
      assert.ok(drops[0].counts.overflow > 0);
      assert.equal(agent.conns[0].bytes, 0, 'the agent has not read a byte yet');

      // The agent starts reading.
      const drained = nextEvent(client, 'drain');
      agent.conns[0].socket.resume();
      await drained;
      await waitFor(() => client.stats().buffered === 0, 'the queue flushed');
      s = client.stats();
      await waitFor(() => seqs(agent.conns[0]).length === s.written, `the ${s.written} written messages at the agent`);
      await waitFor(
        () => drops.reduce((n, d) => n + (d.counts.overflow ?? 0), 0) === s.dropped.overflow,
        "'drop' events adding up to dropped.overflow",
      );

      const got = seqs(agent.conns[0]);
      assert.equal(agent.conns[0].invalid.length, 0, 'every frame is whole, valid JSON');
      assert.equal(got.length, N - s.dropped.overflow, 'everything not dropped arrived');
      for (let i = 1; i < got.length; i++) {
        assert.ok(got[i] > got[i - 1], `in order, no duplicates: #${i} ${got[i - 1]} -> ${got[i]}`);
      }
      assert.equal(got.at(-1), N - 1, 'the newest message arrived');
      // The oldest were dropped: the newest messages, as many as maxQueueBytes holds, all arrived, as
      // one contiguous run up to the last one sent. (Before it, what the kernel and the writer had
      // taken before the queue filled; a writer on its own thread may have taken batches between drops,
      // so the number of gaps there is not fixed.)
      let run = 1;
      while (run < got.length && got[got.length - 1 - run] === got[got.length - run] - 1) run++;
      const newestThatFit = Math.floor(maxQueueBytes / frameSize(N - 1)) - 1;
      assert.ok(run >= newestThatFit, `the newest ${run} messages arrived in a run; at least ${newestThatFit} fit the queue`);
      if (transport === 'js') {
        // The JS transport hands full batches to the kernel from inside send(), so the first ones
        // were written before the queue filled. The native transport's writer is another thread: on
        // a busy machine it may not run at all during a burst this short (~150 ms), and then the
        // oldest messages are the ones the bound drops, as counted above (every message before
        // got[0] is missing and `got.length` is exactly what was not dropped).
        assert.equal(got[0], 0, 'the first messages went to the kernel before it filled up');
      }

      // And the link works normally again.
      assert.equal(client.send({ seq: N }), true);
      await waitFor(() => seqs(agent.conns[0]).at(-1) === N, 'a message sent after the recovery');
    });

    test('stop() against an agent that never reads ends within stopTimeoutMs and counts the rest as dropped.stop', async (t) => {
      const agent = await startFrameAgent(t);
      const stopTimeoutMs = 400;
      const client = makeSDK(t, transport, agent.socketPath, {
        highWaterMark: 64 * 1024,
        maxQueueBytes: 256 * 1024,
        stopTimeoutMs,
        handshakeTimeoutMs: 50,
      });
      const drops = [];
      client.on('drop', (d) => drops.push(d));
      client.start();
      await waitFor(() => client.statuses.includes('started'), "'started' (handshake timeout)");

      const N = 20_000;
      for (let i = 0; i < N; i++) client.send({ seq: i, pad: PAD });
      const before = client.stats();
      assert.ok(before.buffered > 0);

      const t0 = Date.now();
      await client.stop();
      const elapsed = Date.now() - t0;
      assert.ok(elapsed >= stopTimeoutMs - 50, `stop() kept trying to flush for the timeout (${elapsed} ms)`);
      assert.ok(elapsed < stopTimeoutMs + 1500 * SLOWDOWN, `stop() took ${elapsed} ms with stopTimeoutMs ${stopTimeoutMs}`);

      const s = client.stats();
      assert.ok(s.dropped.stop > 0, 'what was left queued is counted as dropped.stop');
      assert.equal(s.buffered, 0);
      assert.equal(s.bufferedBytes, 0);
      assert.equal(s.accepted, N);
      assert.equal(s.accepted, s.written + s.dropped.overflow + s.dropped.stop, 'every accepted message is accounted for');
      assert.equal(client.linked, false);
      assert.deepEqual(client.statuses, ['started', 'stopped']);
      await waitFor(
        () => drops.reduce((n, d) => n + (d.counts.stop ?? 0), 0) === s.dropped.stop,
        "'drop' events with reason stop adding up to dropped.stop",
      );

      // The agent sees the connection closed once it reads what the kernel holds; no goodbye, since
      // the queue never drained.
      agent.conns[0].socket.resume();
      await waitFor(() => agent.conns[0].closed, 'the agent sees the connection closed');
      const frames = agent.conns[0].frames;
      assert.ok(!frames.some((f) => f.signal?.sdkclient?.status === 'disconnected'), 'no goodbye after a timed-out flush');
      assert.ok(seqs(agent.conns[0]).length <= s.written);
    });
  });
}
