// Reconnection while sending: a frame cut by a broken connection is re-sent whole on the next one,
// never half, with no gap and no duplicate; an agent killed and restarted repeatedly under a steady
// stream sees no reordering and no duplicates, and the SDK comes back within a bounded time.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { transports, startSim, makeSDK, startAndWait, waitFor, SLOWDOWN, startFrameAgent } from './helpers.mjs';

/** Bounds far above what these tests send, so nothing is dropped while away: any gap would be a loss. */
const NO_DROPS = {
  maxBufferedMsgs: 1_000_000,
  maxQueueBytes: 256 * 1024 * 1024,
  highWaterMark: 64 * 1024 * 1024,
  handshakeTimeoutMs: 50,
  reconnectIntervalMs: 20,
};

const seqsOf = (frames) => frames.filter((f) => f.data).map((f) => f.data.payload.seq);
const isHello = (f) => f?.signal?.sdkclient?.status === 'connected';

/** Send `perTick` messages with increasing seq every millisecond until stopped. */
function steadySender(client, perTick, pad = '') {
  const state = { next: 0, timer: null };
  state.timer = setInterval(() => {
    for (let i = 0; i < perTick; i++) client.send(pad ? { seq: state.next++, pad } : { seq: state.next++ });
  }, 1);
  state.stop = () => clearInterval(state.timer);
  return state;
}

/**
 * Break `conn` the way that leaves the SDK's accounting exact: once the SDK has a backlog (the socket
 * is full), read everything the kernel holds, then destroy the connection before the SDK can write
 * more. The bytes after the last newline read are the start of the cut frame.
 */
async function drainAndCut(client, conn, { insideFrame = false } = {}) {
  // With `insideFrame`, a drain whose data ends at a frame boundary is not cut: the agent stops
  // reading again, and drains once the SDK has written more and filled the socket again. Whether
  // the kernel's data ends inside a frame is up to the sizes and timing of the SDK's writes (Linux
  // takes a write of under ~106 KB to a Unix stream socket whole or not at all), so this bounds
  // the tries rather than hoping for one cut in a few.
  // What the SDK had written when the agent last drained: a new try waits until it has written more.
  let written = -1;
  for (let tries = 1; ; tries++) {
    conn.socket.pause();
    await waitFor(
      () => client.stats().bufferedBytes > 1024 * 1024 && client.stats().written > written,
      'a backlog in the SDK (the socket is full)',
    );
    const cut = await new Promise((resolve) => {
      conn.onData = () => {
        conn.onData = null;
        // Runs after this poll phase, in which the whole kernel buffer was read (libuv reads until a
        // short read) and the SDK's socket, not writable while the buffer was full, wrote nothing.
        setImmediate(() => {
          if (!insideFrame || conn.tail.length > 0 || tries >= 30) {
            conn.socket.destroy();
            resolve(true);
          } else {
            conn.socket.pause();
            written = client.stats().written;
            resolve(false);
          }
        });
      };
      conn.socket.resume();
    });
    if (cut) break;
  }
  await waitFor(() => conn.closed, 'the connection broken');
}

/**
 * The bytes a frame of `payload` takes on the wire (the SDK serialises with JSON.stringify).
 */
const frameBytes = (payload) => Buffer.byteLength(`{"data":{"sdkclient":{"name":"test-app"},"payload":${JSON.stringify(payload)}}}\n`);

/**
 * What the agent got over several connections, each broken by drainAndCut(): every complete frame
 * valid, the hello first, in order within and across connections, nothing twice. Nothing missing
 * either, with one physical exception: a transport that writes from its own I/O thread (anything but
 * 'js', which writes on the JS thread and so cannot write between the agent's last read and its
 * destroy()) may have put frames into the socket after the agent drained it; those are lost with the
 * connection. Such a loss may only sit right at a cut, and the SDK must count it as written: the
 * bytes it reports written are exactly the complete frames the agent got plus the frames it lost.
 */
function assertDeliveredOnce(client, conns, payloadOf, sent) {
  const lossAtCutPossible = client.transport !== 'js';
  const all = [];
  let prevLast = -1;
  const cuts = new Set();
  let completeBytes = 0;
  for (const [k, c] of conns.entries()) {
    assert.equal(c.invalid.length, 0, `connection ${k}: every complete frame is valid JSON`);
    assert.ok(isHello(c.frames[0]), `connection ${k} opens with the hello`);
    const list = seqsOf(c.frames);
    for (let i = 1; i < list.length; i++) {
      assert.ok(list[i] > list[i - 1], `connection ${k} in order at #${i}: ${list[i - 1]} -> ${list[i]}`);
    }
    if (list.length) {
      assert.ok(
        list[0] > prevLast,
        `connection ${k} starts at ${list[0]}, after ${prevLast} (a lower number is a re-sent, duplicated frame)`,
      );
      if (k > 0) cuts.add(prevLast + 1);
      prevLast = list.at(-1);
    }
    completeBytes += c.bytes - c.tail.length;
    all.push(...list);
  }
  const unique = new Set(all);
  assert.equal(all.length - unique.size, 0, `no duplicates (${all.length - unique.size} seen)`);
  const missing = [];
  for (let i = 0; i < sent; i++) if (!unique.has(i)) missing.push(i);
  if (!lossAtCutPossible) {
    assert.deepEqual(missing.slice(0, 10), [], `no gap: ${missing.length} messages never arrived`);
  } else {
    for (const m of missing) assert.ok(cuts.has(m) || missing.includes(m - 1), `#${m} missing away from a cut`);
  }
  let missingBytes = 0;
  for (const m of missing) missingBytes += frameBytes(payloadOf(m));
  assert.equal(
    client.stats().bytesWritten,
    completeBytes + missingBytes,
    'bytes written = complete frames the agent got + frames lost in the broken sockets',
  );
  return missing.length;
}

for (const transport of transports()) {
  describe(`reconnect while sending [${transport}]`, () => {
    test('a frame cut by a broken connection is re-sent whole on the next connection: no gap, no duplicate', async (t) => {
      const agent = await startFrameAgent(t);
      const client = makeSDK(t, transport, agent.socketPath, NO_DROPS);
      client.start();
      await waitFor(() => agent.conns.length === 1 && client.linked, 'the first connection');
      const PAD = 'x'.repeat(150_000);
      // 150 KB frames: Linux takes a write to a Unix stream socket in pieces of up to about half the
      // send buffer (~106 KB by default) and a smaller write whole or not at all, so frames this big
      // are what a full socket cuts: one is taken in part and the kernel's data ends inside it.
      const sender = steadySender(client, 1, PAD);
      t.after(() => sender.stop());

      // Where a cut lands is up to the kernel and the writer's timing: when the last piece the kernel
      // took before the agent's final read was the rest of a frame, the connection ends at a frame
      // boundary and nothing is cut. Seen under CPU emulation with the native transport, whose I/O
      // thread writes on while the agent drains. So cut until one lands inside a frame.
      const MAX_CUTS = 8;
      const N = 300 * 1024;
      let cuts = 0;
      let cut = null;
      while (cut === null && cuts < MAX_CUTS) {
        const conn = agent.conns[cuts];
        // Phase 1: the agent reads normally for a while.
        conn.socket.resume();
        await waitFor(() => conn.bytes >= N, `${N} bytes read on connection ${cuts + 1}`);
        // Phase 2: it stops reading until the SDK has a backlog; then it reads all the kernel holds and
        // breaks the connection: whatever it read it keeps, the bytes after the last newline are the cut frame.
        await drainAndCut(client, conn);
        cuts++;
        await waitFor(() => conn.closed && agent.conns.length === cuts + 1, `the SDK reconnected after cut ${cuts}`);
        if (conn.tail.length > 0) cut = conn;
      }
      assert.ok(cut !== null, `none of ${cuts} cuts landed inside a frame: the scenario was not reproduced`);
      const next = agent.conns[cuts];
      next.socket.resume();
      await waitFor(() => seqsOf(next.frames).length > 20, 'traffic on the connection after the cut');
      sender.stop();
      const sent = sender.next;
      await waitFor(
        () => client.stats().buffered === 0 && seqsOf(next.frames).at(-1) === sent - 1,
        'everything sent delivered on the connection after the cut',
      );

      assert.match(cut.tail.toString('utf8'), /^\{"data"/, 'the tail is the start of a telemetry frame');
      assert.equal(next.tail.length, 0);
      const cutSeq = seqsOf(cut.frames).at(-1) + 1;
      const lost = assertDeliveredOnce(client, agent.conns, (seq) => ({ seq, pad: PAD }), sent);
      // The cut frame, seen in part on the cut connection, is re-sent whole as the first telemetry of
      // the next one (unless frames were lost at a cut, as explained above, with what followed them).
      if (lost === 0) assert.equal(seqsOf(next.frames)[0], cutSeq, `the connection after the cut starts at the cut frame #${cutSeq}`);
      t.diagnostic(`cut inside #${cutSeq} after ${cut.bytes} bytes (${cuts} cut(s)); ${lost} lost in the broken sockets`);

      const s = client.stats();
      assert.equal(s.dropped.total, 0);
      assert.equal(s.reconnects, cuts);
      assert.equal(s.accepted, sent);
      assert.equal(s.written, sent);
    });

    test('a slow reader cut repeatedly: nothing delivered is sent again, nothing is lost', async (t) => {
      // The agent reads in short bursts, so the SDK's writes complete late and in part; then the
      // connection is cut. A transport that queued several batches behind a pending write could not
      // tell how much of them the kernel took and re-sent frames the agent already had (seen: ~500
      // duplicates per cut); one that ignored how much of a batch the kernel took at once re-sends the
      // frames before a cut inside the batch (~100 duplicates). Whether a cut lands inside a batch
      // varies from run to run, so this cuts until two have (at least 3 cuts, at most 10).
      const agent = await startFrameAgent(t);
      const client = makeSDK(t, transport, agent.socketPath, NO_DROPS);
      client.start();
      await waitFor(() => agent.conns.length === 1 && client.linked, 'the first connection');
      const PAD = 'x'.repeat(250);
      const sender = steadySender(client, 200, PAD); // ~65 KB a millisecond
      t.after(() => sender.stop());

      let cuts = 0;
      let insideFrame = 0;
      while (cuts < 10 && (cuts < 3 || insideFrame < 2)) {
        const conn = agent.conns[cuts];
        for (let k = 0; k < 30; k++) {
          // Read for one turn of the event loop, then not until the SDK has written more.
          conn.socket.resume();
          await new Promise((resolve) => setTimeout(resolve, 1));
          conn.socket.pause();
          const bytes = conn.bytes;
          await waitFor(() => client.stats().bufferedBytes > 0 || conn.bytes > bytes, 'the SDK writing');
        }
        // On the JS transport, which writes only on this thread, the first two cuts wait for the
        // kernel's data to end inside a frame; the rest land wherever. (The native transport's I/O
        // thread may write during a drain, so a drain there is cut at once.)
        await drainAndCut(client, conn, { insideFrame: transport === 'js' && insideFrame < 2 });
        cuts++;
        if (conn.tail.length > 0) insideFrame++;
        await waitFor(() => agent.conns.length === cuts + 1, `reconnect after cut ${cuts}`);
      }
      t.diagnostic(`${cuts} cuts, ${insideFrame} inside a frame`);
      // Under CPU emulation the write timing that puts a cut inside a frame may not occur; the
      // delivered-once checks below still hold for cuts at frame boundaries.
      if (SLOWDOWN === 1) assert.ok(insideFrame >= 1, `none of ${cuts} cuts landed inside a frame: the scenario was not reproduced`);
      else if (insideFrame === 0) t.diagnostic('no cut landed inside a frame under emulation; checking the boundary cuts only');
      const last = agent.conns[cuts];
      last.socket.resume();
      await waitFor(() => seqsOf(last.frames).length > 1000, 'traffic on the last connection');
      sender.stop();
      const sent = sender.next;
      await waitFor(
        () => client.stats().buffered === 0 && seqsOf(last.frames).at(-1) === sent - 1,
        'everything sent delivered on the last connection',
      );
      const lost = assertDeliveredOnce(client, agent.conns, (seq) => ({ seq, pad: PAD }), sent);
      t.diagnostic(`${lost} lost in the broken sockets`);
      const s = client.stats();
      assert.equal(s.reconnects, cuts);
      assert.equal(s.dropped.total, 0);
      assert.equal(s.written, sent);
    });

    test('agent killed and restarted 5 times under a steady stream: no reordering, no duplicates, quick reconnects', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath, { maxBufferedMsgs: 100_000 });
      const drops = [];
      client.on('drop', (d) => drops.push(d));
      await startAndWait(client);
      const sender = steadySender(client, 1);
      t.after(() => sender.stop());

      const reconnectMs = [];
      for (let round = 0; round < 5; round++) {
        const before = sim.counts.telemetry;
        await waitFor(() => sim.counts.telemetry >= before + 50, `traffic before kill #${round + 1}`);
        const hellos = sim.counts.hellos;
        const t0 = Date.now();
        sim.kill();
        await sim.listen(); // the agent restarts at once
        await waitFor(() => sim.counts.hellos > hellos, `the SDK back after kill #${round + 1}`);
        reconnectMs.push(Date.now() - t0);
      }
      const before = sim.counts.telemetry;
      await waitFor(() => sim.counts.telemetry >= before + 50, 'traffic after the last restart');
      sender.stop();
      const sent = sender.next;
      await waitFor(
        () => client.stats().buffered === 0 && sim.telemetry.at(-1)?.payload.seq === sent - 1,
        'the last message delivered',
      );

      // Reconnect promptly: the default 200 ms retry interval plus generous margin.
      for (const ms of reconnectMs) assert.ok(ms < 2000 * SLOWDOWN, `reconnected in ${ms} ms`);
      const s = client.stats();
      assert.equal(s.reconnects, 5);
      assert.equal(sim.counts.connections, 6);
      assert.equal(s.dropped.total, 0);
      assert.equal(drops.length, 0);
      assert.equal(sim.invalid.length, 0, 'no cut or broken frame reached the agent as a frame');

      // Group by connection, in the order connections were made.
      const byConn = new Map();
      for (const r of sim.telemetry) {
        if (!byConn.has(r.client)) byConn.set(r.client, []);
        byConn.get(r.client).push(r.payload.seq);
      }
      const conns = [...byConn.keys()].sort((x, y) => x.id - y.id);
      for (const c of conns) assert.equal(c.helloFirst, true);
      let last = -1;
      let lost = 0;
      for (const c of conns) {
        const list = byConn.get(c);
        // Within a connection nothing is dropped (no bound reached): contiguous.
        for (let i = 1; i < list.length; i++) {
          assert.equal(list[i], list[i - 1] + 1, `connection #${c.id} contiguous at ${list[i - 1]} -> ${list[i]}`);
        }
        // Across connections: strictly after what came before (no duplicate, no reordering). A gap is
        // possible only here: frames the kernel had accepted but the killed agent never read.
        assert.ok(list[0] > last, `connection #${c.id} starts at ${list[0]} after ${last}`);
        lost += list[0] - last - 1;
        last = list.at(-1);
      }
      assert.equal(last, sent - 1);
      assert.equal(sim.counts.telemetry + lost, sent);
      // Only what sat unread in the socket at each kill can be lost; at 1 message/ms that is a handful.
      assert.ok(lost <= 5 * 50, `${lost} messages lost in the killed agents' socket buffers`);
      t.diagnostic(`reconnect ms: ${reconnectMs.join(', ')}; sent ${sent}; lost in killed sockets: ${lost}`);
    });
  });
}
