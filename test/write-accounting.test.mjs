// Telemetry written to an agent that has just closed: the write fails (EPIPE), so the messages in
// it must not be counted as written; they are sent again, whole and in order, on the next
// connection. Throughout, accepted = written + dropped.total + buffered, and every message counted
// as written reaches the agent.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { transports, startRawAgent, makeSDK, waitFor } from './helpers.mjs';

/** Telemetry seqs received on each connection, in order. */
const seqsOf = (conn) =>
  conn
    .lines()
    .map((l) => JSON.parse(l))
    .filter((f) => f.data)
    .map((f) => f.data.payload.seq);

for (const transport of transports()) {
  describe(`telemetry whose write fails because the agent closed [${transport}]`, () => {
    test('is not counted as written and is sent again on the next connection, every round', async (t) => {
      const agent = await startRawAgent(t);
      const client = makeSDK(t, transport, agent.path, { reconnectIntervalMs: 5, handshakeTimeoutMs: 60_000 });
      const violations = [];
      const checkInvariant = (where) => {
        const s = client.stats();
        if (s.accepted !== s.written + s.dropped.total + s.buffered) violations.push({ where, ...s });
      };
      const received = () => agent.conns.flatMap(seqsOf);
      client.start();
      const ROUNDS = 30;
      let seq = 0;
      const send = (where) => {
        client.send({ seq: seq++ });
        checkInvariant(where);
      };
      for (let round = 0; round < ROUNDS; round++) {
        await waitFor(() => client.linked && agent.conns.length === round + 1, `connection ${round + 1}`);
        const conn = agent.conns[round];
        const first = seq;
        send('before the close');
        await waitFor(() => seqsOf(conn).includes(first), `#${first} at the agent`);
        assert.equal(client.stats().written, first + 1);
        // The agent is gone: its socket is closed in the kernel before the next message is written.
        conn.socket.destroy();
        send('first after the close');
        send('second after the close');
        await waitFor(() => {
          checkInvariant('while reconnecting');
          return agent.conns.length === round + 2;
        }, `connection ${round + 2}`);
        const marker = seq;
        send('after reconnecting');
        await waitFor(() => {
          checkInvariant('waiting for the marker');
          return seqsOf(agent.conns[round + 1]).includes(marker);
        }, `#${marker} at the agent`);
        const got = received();
        assert.deepEqual(got, Array.from({ length: seq }, (_, i) => i), `round ${round}: every message once, in order`);
        const s = client.stats();
        assert.equal(s.written, seq, `round ${round}: written counts what the agent received`);
        assert.equal(s.buffered, 0);
        assert.equal(s.dropped.total, 0);
      }
      assert.deepEqual(violations.slice(0, 3), [], 'accepted = written + dropped.total + buffered at all times');
    });
  });
}

for (const transport of transports()) {
  describe(`a lone message larger than the socket buffer, to an agent not reading yet [${transport}]`, () => {
    test('is taken in part at once, the rest follows it when the agent reads: delivered whole, once, in order, counted once', async (t) => {
      const agent = await startRawAgent(t, { paused: true });
      const client = makeSDK(t, transport, agent.path, { handshakeTimeoutMs: 60_000 });
      client.start();
      await waitFor(() => client.linked && agent.conns.length === 1, 'the link');
      const invariant = () => {
        const s = client.stats();
        assert.equal(s.accepted, s.written + s.dropped.total + s.buffered, JSON.stringify(s));
      };
      // ~1 MB in one frame: more than a Unix socket buffers, so the kernel takes only part of it.
      const big = { seq: 0, blob: 'z'.repeat(1_000_000) };
      client.send(big);
      invariant();
      assert.equal(client.stats().written, 0, 'not counted as written while part of it waits');
      // Later runs queue behind the cut frame, whatever they are.
      await new Promise((resolve) => setImmediate(resolve));
      client.send({ seq: 1 });
      client.send({ seq: 2 }, 'ch');
      invariant();
      agent.conns[0].socket.resume();
      await waitFor(() => {
        invariant();
        return client.stats().written === 3;
      }, 'three messages written');
      await waitFor(() => seqsOf(agent.conns[0]).length === 3, 'three messages at the agent');
      const frames = agent.conns[0].lines().map((l) => JSON.parse(l)).filter((f) => f.data);
      assert.deepEqual(frames.map((f) => f.data.payload.seq), [0, 1, 2]);
      assert.equal(frames[0].data.payload.blob, big.blob);
      assert.equal(frames[2].data.channel, 'ch');
      const s = client.stats();
      assert.equal(s.buffered, 0);
      assert.equal(s.dropped.total, 0);
    });
  });
}

for (const transport of transports()) {
  describe(`a 'drain' listener that sends a message larger than the socket buffer [${transport}]`, () => {
    test('what it queues behind that message follows it once the agent reads: nothing waits for a later send()', async (t) => {
      const agent = await startRawAgent(t, { paused: true });
      const client = makeSDK(t, transport, agent.path, { handshakeTimeoutMs: 60_000, highWaterMark: 100_000 });
      client.start();
      await waitFor(() => client.linked && agent.conns.length === 1, 'the link');
      // ~1 MB frames: more than a Unix socket buffers, so each is taken in part and finished later.
      const blob = 'z'.repeat(1_000_000);
      assert.equal(client.send({ seq: 0, blob }), false, 'over the high-water mark');
      await new Promise((resolve) => setImmediate(resolve));
      client.send({ seq: 1, blob });
      // The 'drain' comes from the callback of the write of seq 1; the listener's first message goes
      // out at once (nothing else is waiting), in part, and its second queues behind it.
      let drains = 0;
      client.on('drain', () => {
        if (drains++ > 0) return;
        client.send({ seq: 2, blob });
        client.send({ seq: 3 });
      });
      agent.conns[0].socket.resume();
      await waitFor(() => seqsOf(agent.conns[0]).length === 4, 'four messages at the agent');
      await waitFor(() => client.stats().written === 4, 'four messages counted as written');
      assert.deepEqual(seqsOf(agent.conns[0]), [0, 1, 2, 3]);
      const s = client.stats();
      assert.equal(s.buffered, 0);
      assert.equal(s.dropped.total, 0);
    });
  });
}

for (const transport of transports()) {
  describe(`a lone message the kernel takes at once [${transport}]`, () => {
    test('is written during send() and leaves no process.nextTick behind', async (t) => {
      const agent = await startRawAgent(t);
      const client = makeSDK(t, transport, agent.path, { handshakeTimeoutMs: 60_000 });
      client.start();
      await waitFor(() => client.linked && agent.conns.length === 1, 'the link');
      // Whatever the link itself wrote has settled: the next send() finds nothing queued.
      await waitFor(() => client.stats().buffered === 0, 'nothing buffered');
      await new Promise((resolve) => setImmediate(resolve));
      // A write callback the Writable must defer costs a nextTick, and with it a whole tick-queue
      // run, for every message at one message per timer tick.
      const ticks = [];
      const hook = createHook({
        init(id, type) {
          if (type === 'TickObject') ticks.push(new Error('nextTick scheduled here').stack);
        },
      });
      hook.enable();
      let accepted;
      try {
        assert.equal(client.send({ seq: 0 }), true);
        accepted = client.stats().accepted;
      } finally {
        hook.disable();
      }
      assert.deepEqual(ticks, [], 'send() scheduled a process.nextTick');
      assert.equal(accepted, 1);
      await waitFor(() => client.stats().written === 1, 'the message counted as written');
      await waitFor(() => agent.conns[0].lines().some((l) => l.includes('"seq":0')), 'the message at the agent');
    });

    test('a short run: the batch written at its end leaves no process.nextTick behind either', async (t) => {
      const agent = await startRawAgent(t);
      const client = makeSDK(t, transport, agent.path, { handshakeTimeoutMs: 60_000 });
      client.start();
      await waitFor(() => client.linked && agent.conns.length === 1, 'the link');
      await waitFor(() => client.stats().buffered === 0, 'nothing buffered');
      await new Promise((resolve) => setImmediate(resolve));
      // Three messages in one timer tick (a late timer catching up, a few sensors read at once): the
      // start of the run goes out during send() (two messages on the JS transport, one on native),
      // the rest in one write when the run ends. That write settles as a lone one does when the
      // kernel takes all of it, with no deferred callback.
      const ticks = [];
      const hook = createHook({
        init(id, type) {
          if (type === 'TickObject') ticks.push(new Error('nextTick scheduled here').stack);
        },
      });
      let atRunEnd;
      hook.enable();
      try {
        for (let seq = 0; seq < 3; seq++) assert.equal(client.send({ seq }), true);
        // The rest of the run is written from a promise reaction queued during it, so before this one.
        await Promise.resolve();
        atRunEnd = client.stats();
      } finally {
        hook.disable();
      }
      assert.deepEqual(ticks, [], 'the run scheduled a process.nextTick');
      assert.equal(atRunEnd.accepted, 3);
      if (transport === 'js') {
        assert.equal(atRunEnd.written, 3, 'counted as written when the kernel took the batch');
        assert.equal(atRunEnd.buffered, 0);
      }
      await waitFor(() => client.stats().written === 3 && client.stats().buffered === 0, 'the run counted as written');
      await waitFor(() => seqsOf(agent.conns[0]).length === 3, 'the run at the agent');
      assert.deepEqual(seqsOf(agent.conns[0]), [0, 1, 2]);
    });
  });
}
