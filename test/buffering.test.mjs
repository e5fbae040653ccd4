// Buffering while the agent is unreachable: bounded by maxBufferedMsgs, oldest dropped first,
// delivered in order right after the hello of the next connection; drop accounting and events;
// send() backpressure signal and 'drain'.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  AgentSimulator,
  transports,
  tempSocket,
  startSim,
  makeSDK,
  startAndWait,
  waitFor,
  nextEvent,
} from './helpers.mjs';

/** A simulator that is NOT listening yet (the agent is absent); closed after the test. */
function absentSim(t, options = {}) {
  const sim = new AgentSimulator({ socketPath: tempSocket(t), ...options });
  t.after(() => sim.close());
  return sim;
}

/** The frames the simulator parsed on one connection, in arrival order. */
function framesOf(sim, client) {
  return sim.frames.filter((r) => r.client === client).map((r) => r.frame);
}

function isHello(frame) {
  return frame?.signal?.sdkclient?.status === 'connected';
}

function seqOf(frame) {
  return frame?.data?.payload?.seq;
}

/** Collect every 'drop' event of `client` into an array (with the time it arrived). */
function recordDrops(client) {
  const drops = [];
  client.on('drop', (info) => drops.push({ ...info, at: Date.now() }));
  return drops;
}

for (const transport of transports()) {
  describe(`buffering while the agent is away [${transport}]`, () => {
    test('25 messages with maxBufferedMsgs 10: the newest 10 arrive right after the hello, in order', async (t) => {
      const sim = absentSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { maxBufferedMsgs: 10 });
      const drops = recordDrops(client);
      client.start();
      const results = [];
      for (let i = 0; i < 25; i++) results.push(client.send({ seq: i }));
      assert.equal(client.linked, false);

      // The first 10 fit in the buffer; each later one pushed an older message out.
      assert.deepEqual(results, [...Array(10).fill(true), ...Array(15).fill(false)]);
      let s = client.stats();
      assert.equal(s.accepted, 25);
      assert.equal(s.buffered, 10);
      assert.equal(s.dropped.overflow, 15);
      assert.equal(s.dropped.total, 15);
      assert.equal(s.written, 0);

      // One rate-limited 'drop' event carries all 15, before any agent shows up.
      await waitFor(() => drops.length >= 1, "a 'drop' event");
      assert.equal(drops.length, 1);
      assert.deepEqual(drops[0].counts, { overflow: 15 });
      assert.equal(drops[0].total, 15);

      await sim.listen();
      await waitFor(() => sim.counts.telemetry >= 10, '10 buffered messages at the agent');
      await waitFor(() => client.statuses.includes('started'), "'started'");

      assert.equal(sim.counts.connections, 1);
      const [conn] = sim.clients;
      assert.equal(conn.helloFirst, true);
      const frames = framesOf(sim, conn);
      assert.ok(isHello(frames[0]), `first frame is the hello: ${JSON.stringify(frames[0])}`);
      assert.deepEqual(
        frames.slice(1).map(seqOf),
        [15, 16, 17, 18, 19, 20, 21, 22, 23, 24],
        'the kept messages follow the hello, newest 10, in original order',
      );

      await waitFor(() => client.stats().written === 10, 'written 10');
      s = client.stats();
      assert.equal(s.buffered, 0);
      assert.equal(s.dropped.overflow, 15);
      assert.equal(sim.counts.telemetry, 10);
    });

    test('the default maxBufferedMsgs is 10', async (t) => {
      const sim = absentSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      client.start();
      for (let i = 0; i < 25; i++) client.send({ seq: i });
      assert.equal(client.stats().buffered, 10);
      assert.equal(client.stats().dropped.overflow, 15);

      await sim.listen();
      await waitFor(() => sim.counts.telemetry === 10, 'the 10 kept messages at the agent');
      assert.equal(client.stats().written, 10);
      const [conn] = sim.clients;
      const frames = framesOf(sim, conn);
      assert.ok(isHello(frames[0]));
      assert.deepEqual(frames.slice(1).map(seqOf), [15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
    });

    test('maxBufferedMsgs 0 keeps nothing while away', async (t) => {
      const sim = absentSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { maxBufferedMsgs: 0 });
      const drops = recordDrops(client);
      client.start();
      const results = [];
      for (let i = 0; i < 5; i++) results.push(client.send({ seq: i }));
      assert.deepEqual(results, [false, false, false, false, false]);
      let s = client.stats();
      assert.equal(s.buffered, 0);
      assert.equal(s.dropped.overflow, 5);
      await waitFor(() => drops.length >= 1, "a 'drop' event");
      assert.deepEqual(drops[0].counts, { overflow: 5 });

      await sim.listen();
      await waitFor(() => client.statuses.includes('started'), "'started'");
      // Linked now: a send goes through (the bound applies only while away).
      assert.equal(client.send({ marker: true }), true);
      await waitFor(() => sim.counts.telemetry >= 1, 'the marker');
      const frames = framesOf(sim, sim.clients[0]);
      assert.ok(isHello(frames[0]));
      assert.deepEqual(
        frames.slice(1).map((f) => f.data?.payload),
        [{ marker: true }],
        'nothing sent while away was kept',
      );
      s = client.stats();
      assert.equal(s.dropped.overflow, 5);
      assert.equal(s.accepted, 6);
    });

    test('drop events are rate-limited: a second burst of drops is coalesced into one later event', async (t) => {
      const sim = absentSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { maxBufferedMsgs: 2 });
      const drops = recordDrops(client);
      client.start();
      for (let i = 0; i < 5; i++) client.send({ seq: i }); // 3 dropped
      await waitFor(() => drops.length >= 1, "the first 'drop' event");
      for (let i = 5; i < 9; i++) client.send({ seq: i }); // 4 more dropped, one at a time
      await waitFor(() => drops.length >= 2, "the second 'drop' event");
      assert.deepEqual(drops[0].counts, { overflow: 3 });
      assert.equal(drops[0].total, 3);
      assert.deepEqual(drops[1].counts, { overflow: 4 }, 'the four later drops arrive in one event');
      assert.equal(drops[1].total, 7);
      // The second event waits for the rate limit (1 per second; allow timer slack).
      assert.ok(drops[1].at - drops[0].at >= 900, `second event ${drops[1].at - drops[0].at} ms after the first`);
      assert.equal(client.stats().dropped.overflow, 7);
    });

    test('after the link drops, messages sent while away are kept (bounded) and follow the new hello in order', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { maxBufferedMsgs: 10 });
      await startAndWait(client);
      for (let i = 0; i < 5; i++) client.send({ seq: i });
      await waitFor(() => sim.counts.telemetry === 5, 'the first 5 messages');
      const first = sim.clients[0];

      sim.kill();
      await waitFor(() => client.statuses.includes('stopped'), "'stopped' after the agent was killed");
      assert.equal(client.linked, false);

      for (let i = 5; i < 20; i++) client.send({ seq: i });
      const s = client.stats();
      assert.equal(s.buffered, 10);
      assert.equal(s.dropped.overflow, 5);

      sim.clearRecords();
      await sim.listen();
      await waitFor(() => sim.counts.telemetry === 15, 'the 10 kept messages after the restart');
      await waitFor(() => client.statuses.filter((x) => x === 'started').length === 2, "a second 'started'");
      const second = sim.clients[0];
      assert.notEqual(second, first);
      assert.equal(second.helloFirst, true);
      const frames = framesOf(sim, second);
      assert.ok(isHello(frames[0]), 'the hello opens the new connection');
      assert.deepEqual(frames.slice(1).map(seqOf), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
      assert.equal(client.stats().reconnects, 1);
      assert.deepEqual(client.statuses, ['started', 'stopped', 'started']);
    });

    test('a backlog queued while linked: when the link drops the newest maxBufferedMsgs are kept for the next connection', async (t) => {
      // A raw agent that never reads its first connection, so the SDK builds up a backlog, then
      // drops that connection unread; it reads the second one.
      const socketPath = tempSocket(t);
      const conns = [];
      const server = net.createServer({ pauseOnConnect: true }, (socket) => {
        const conn = { socket, text: '' };
        socket.setEncoding('utf8');
        socket.on('data', (s) => (conn.text += s));
        socket.on('error', () => {});
        conns.push(conn);
      });
      await new Promise((resolve) => server.listen(socketPath, resolve));
      t.after(() => new Promise((resolve) => {
        for (const c of conns) c.socket.destroy();
        server.close(() => resolve());
      }));
      const client = makeSDK(t, transport, socketPath, { maxBufferedMsgs: 10, handshakeTimeoutMs: 50 });
      await startAndWait(client);

      const N = 20_000; // ~1.3 MB: more than the kernel holds
      for (let i = 0; i < N; i++) client.send({ seq: i });
      await waitFor(() => client.stats().buffered > 1000, 'a backlog in the SDK');
      conns[0].socket.destroy(); // whatever the kernel held is lost with the connection
      await waitFor(() => client.statuses.includes('stopped'), "'stopped'");
      let s = client.stats();
      // The SDK may already be linked again (it retries at once while the agent listens) and have
      // written some of them: what reaches the second connection is checked below.
      assert.ok(s.buffered <= 10, `only the newest maxBufferedMsgs are kept while away (${s.buffered} buffered)`);

      await waitFor(() => conns.length === 2, 'the reconnect');
      conns[1].socket.resume();
      await waitFor(() => client.stats().buffered === 0 && (conns[1].text.match(/\n/g) ?? []).length === 11, 'hello + 10');
      const frames = conns[1].text.trim().split('\n').map((l) => JSON.parse(l));
      assert.ok(isHello(frames[0]), 'the hello first');
      assert.deepEqual(
        frames.slice(1).map(seqOf),
        Array.from({ length: 10 }, (_, i) => N - 10 + i),
        'the newest 10 of the backlog, in order',
      );
      s = client.stats();
      assert.equal(s.accepted, N);
      assert.ok(s.dropped.overflow > 0);
      assert.equal(s.accepted, s.written + s.dropped.total, 'every message written or counted dropped');
    });

    test("send() returns false when it pushed an older message out; 'drain' follows once linked and flushed", async (t) => {
      const sim = absentSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { maxBufferedMsgs: 3 });
      let drains = 0;
      client.on('drain', () => drains++);
      client.start();
      assert.equal(client.send({ seq: 0 }), true);
      assert.equal(client.send({ seq: 1 }), true);
      assert.equal(client.send({ seq: 2 }), true);
      assert.equal(client.send({ seq: 3 }), false, 'the 4th message pushed the oldest out');
      assert.equal(drains, 0);

      const drained = nextEvent(client, 'drain');
      await sim.listen();
      await drained;
      // By 'drain' the kept messages are flushed to the socket.
      assert.equal(client.stats().buffered, 0);
      assert.equal(client.stats().written, 3);
      await waitFor(() => sim.counts.telemetry === 3, 'the 3 kept messages');
      assert.deepEqual(sim.telemetry.map((r) => r.payload.seq), [1, 2, 3]);
      // Linked and idle: a plain send is fine again.
      assert.equal(client.send({ seq: 4 }), true);
      await waitFor(() => sim.counts.telemetry === 4, 'the 4th message');
      assert.equal(drains, 1);
    });
  });
}
