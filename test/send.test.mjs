// send(): payload and channel reach the agent exactly; argument and serialisation errors are raised
// synchronously and queue nothing; the frames on the wire are valid JSON.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sdk, transports, startSim, makeSDK, startAndWait, waitFor, startRawAgent } from './helpers.mjs';

const { ValueError } = sdk;

class Point {
  constructor() {
    this.x = 1;
  }
}

for (const transport of transports()) {
  describe(`send [${transport}]`, () => {
    it('puts exactly JSON.stringify\'s text on the wire, for one shape sent many times with values that need care', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);
      const sent = [];
      for (let i = 0; i < 40; i++) {
        // One shape, sent many times (as a serializer specialised for shapes would see it), with values that need care.
        const msg = { seq: i, t: i % 3 === 0 ? -0 : i / 7, v: i % 5 === 0 ? NaN : 1e21 + i, s: `q"\\\n\u2028${i}`, ok: i % 2 === 0 };
        if (i === 30) msg.s = 'lone \ud800 surrogate';
        if (i === 35) msg.extra = { toJSON: () => 'replaced' };
        sent.push(msg);
        client.send(msg, i % 4 === 0 ? 'ch' : undefined);
      }
      await waitFor(() => sim.telemetry.length === 40, '40 messages');
      const head = '{"data":{"sdkclient":{"name":"test-app"},"payload":';
      sim.telemetry.forEach((r, i) => {
        const json = JSON.stringify(sent[i]);
        assert.equal(r.raw, i % 4 === 0 ? `${head}${json},"channel":"ch"}}` : `${head}${json}}}`, `message ${i}`);
      });
    });

    it('a send() made by a getter or toJSON while another message is serialised arrives whole, ahead of that message', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);
      const expected = [];
      for (let i = 0; i < 300; i++) {
        // A shape sent many times, so that a serialiser specialised for it is in use by then.
        const msg = { seq: i, ts: 1764081600123 + i, temp: 21.37, dev: 'sensor-07', note: 'x' };
        if (i % 50 === 49) {
          // Every 50th message sends two more while its members are read (from a getter, then from
          // a toJSON), one of them with a channel: they are queued first, as JSON.stringify's
          // reads come before the outer message is queued.
          const inner1 = { nested: i, from: 'getter' };
          const inner2 = { nested: i, from: 'toJSON' };
          Object.defineProperty(msg, 'note', { enumerable: true, get: () => (client.send(inner1, 'side'), 'got') });
          msg.extra = { toJSON: () => (client.send(inner2), 'tojson') };
          const seen = { seq: msg.seq, ts: msg.ts, temp: msg.temp, dev: msg.dev, note: 'got', extra: 'tojson' };
          expected.push([inner1, 'side'], [inner2, undefined], [seen, undefined]);
        } else {
          expected.push([msg, undefined]);
        }
        client.send(msg);
      }
      await waitFor(() => sim.telemetry.length === expected.length, `${expected.length} messages`);
      const head = '{"data":{"sdkclient":{"name":"test-app"},"payload":';
      sim.telemetry.forEach((r, i) => {
        const [payload, channel] = expected[i];
        const json = JSON.stringify(payload);
        assert.equal(r.raw, channel ? `${head}${json},"channel":"${channel}"}}` : `${head}${json}}}`, `message ${i}`);
      });
      const s = client.stats();
      assert.equal(s.accepted, expected.length);
      await waitFor(() => client.stats().written === expected.length, 'all counted as written');
    });

    it('delivers exactly a message larger than the staging buffer, of a shape sent many times before and after it', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);
      const sent = [];
      for (let i = 0; i < 60; i++) {
        // The same keys and value types throughout; message 40 carries ~300 KB (with non-ASCII text).
        const big = i === 40;
        const msg = { seq: i, note: big ? 'é'.repeat(100_000) + 'x'.repeat(50_000) : `n${i}`, samples: big ? Array.from({ length: 20_000 }, (_, k) => k / 8) : [i / 4] };
        sent.push(msg);
        client.send(msg);
        if (i === 50) await waitFor(() => sim.telemetry.length === 51, 'the first 51 messages');
      }
      await waitFor(() => sim.telemetry.length === 60, '60 messages');
      const head = '{"data":{"sdkclient":{"name":"test-app"},"payload":';
      sim.telemetry.forEach((r, i) => assert.equal(r.raw, `${head}${JSON.stringify(sent[i])}}}`, `message ${i}`));
      assert.equal(client.stats().dropped.total, 0);
    });

    it('writes the start of a synchronous run on an idle link during send() itself; the rest of the run is batched', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);
      // The JS transport writes a run's first two messages at once when nothing waits: a batch of two
      // costs more than two writes (bench/RESULTS.md). The native transport hands over the first.
      const direct = transport === 'js' ? 2 : 1;
      for (let round = 0; round < 3; round++) {
        const before = client.stats();
        assert.equal(before.buffered, 0);
        for (let i = 0; i < direct; i++) {
          assert.equal(client.send({ round, i }), true);
          // No microtask, no thread hand-off: the kernel took it before send() returned.
          const after = client.stats();
          assert.equal(after.written, before.written + i + 1, `round ${round}, message ${i}: written during send()`);
          assert.equal(after.buffered, 0);
        }
        for (let i = direct; i < 6; i++) client.send({ round, i });
        assert.equal(client.stats().buffered, 6 - direct, `round ${round}: the rest of the run waits for its end`);
        await waitFor(() => sim.telemetry.length === 6 * (round + 1) && client.stats().buffered === 0, `round ${round} delivered`);
      }
      assert.deepEqual(
        sim.telemetry.map((r) => [r.payload.round, r.payload.i]),
        [0, 1, 2].flatMap((round) => [0, 1, 2, 3, 4, 5].map((i) => [round, i])),
      );
    });

    it('delivers payloads with and without a channel exactly; empty-string and null channels mean no channel', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);
      const tricky = {
        s: 'quote " backslash \\ newline \n tab \t nul \u0000 ls \u2028 \u00e9\u6f22\u{1F600}',
        n: -1.5e-7,
        big: 9007199254740991,
        arr: [1, null, true, 'x', { deep: [[]] }],
        empty: {},
      };
      // Lone surrogates are not valid UTF-8; JSON.stringify escapes them, so the frame stays valid.
      tricky.lone = 'a\ud800b\udfffc';
      const bare = Object.create(null);
      bare.proto = 'none';
      assert.equal(client.send({ a: 1 }), true);
      client.send({ b: 2 }, 'alerts');
      client.send({ c: 3 }, '');
      client.send({ d: 4 }, null);
      client.send({ e: 5 }, undefined);
      client.send(tricky, 'ch "quoted"\n\u00fc');
      client.send(bare);
      client.send({});
      await waitFor(() => sim.telemetry.length === 8, '8 messages');
      const got = sim.telemetry.map((r) => ({ payload: r.payload, channel: r.channel, hasChannel: 'channel' in r }));
      assert.deepEqual(got, [
        { payload: { a: 1 }, channel: undefined, hasChannel: false },
        { payload: { b: 2 }, channel: 'alerts', hasChannel: true },
        { payload: { c: 3 }, channel: undefined, hasChannel: false },
        { payload: { d: 4 }, channel: undefined, hasChannel: false },
        { payload: { e: 5 }, channel: undefined, hasChannel: false },
        { payload: tricky, channel: 'ch "quoted"\n\u00fc', hasChannel: true },
        { payload: { proto: 'none' }, channel: undefined, hasChannel: false },
        { payload: {}, channel: undefined, hasChannel: false },
      ]);
      for (const r of sim.telemetry) {
        assert.equal(r.name, 'test-app');
        if (!('channel' in r)) assert.ok(!('channel' in JSON.parse(r.raw).data), `no channel key in ${r.raw}`);
      }
      assert.equal(sim.invalid.length, 0);
      assert.equal(client.stats().accepted, 8);
    });

    it('rejects a msg that is not a plain object with a TypeError naming msg', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);
      const bad = [[1, 2], [], null, undefined, 'text', 42, true, new Map([['a', 1]]), new Point(), new Date(0), () => {}];
      for (const msg of bad) {
        assert.throws(
          () => client.send(msg),
          (err) => err instanceof TypeError && /\bmsg\b/.test(err.message),
          `send(${String(msg)}) must throw a TypeError naming msg`,
        );
      }
      assert.equal(client.stats().accepted, 0);
    });

    it('rejects a channel that is not a string with a TypeError naming channel', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);
      for (const channel of [42, true, {}, ['a'], Symbol('s')]) {
        assert.throws(
          () => client.send({ ok: 1 }, channel),
          (err) => err instanceof TypeError && /\bchannel\b/.test(err.message),
          `send(msg, ${String(channel)}) must throw a TypeError naming channel`,
        );
      }
      assert.equal(client.stats().accepted, 0);
      client.send({ marker: true });
      await waitFor(() => sim.telemetry.length === 1, 'the marker');
      assert.deepEqual(sim.telemetry.map((r) => r.payload), [{ marker: true }]);
    });

    it('raises ValueError (code ERR_IOTTLY_VALUE) for a non-serialisable msg and queues nothing', async (t) => {
      const sim = await startSim(t);
      const client = makeSDK(t, transport, sim.socketPath);
      await startAndWait(client);
      const cycle = { a: 1 };
      cycle.self = cycle;
      const nestedCycle = { list: [] };
      nestedCycle.list.push({ back: nestedCycle });
      const bad = [
        cycle,
        nestedCycle,
        { n: 10n },
        { deep: { n: 1n } },
        { toJSON: () => undefined },
        { toJSON: () => [1, 2] },
        { toJSON: () => 'str' },
        {
          get boom() {
            throw new Error('getter fails');
          },
        },
        {
          toJSON() {
            throw new Error('toJSON fails');
          },
        },
      ];
      for (const msg of bad) {
        assert.throws(
          () => client.send(msg),
          (err) => err instanceof ValueError && err.code === 'ERR_IOTTLY_VALUE' && err.name === 'ValueError',
          'must throw ValueError',
        );
        assert.throws(() => client.send(msg, 'chan'), ValueError);
      }
      const stats = client.stats();
      assert.equal(stats.accepted, 0);
      assert.equal(stats.buffered, 0);
      client.send({ marker: 1 });
      await waitFor(() => sim.telemetry.length === 1, 'the marker');
      assert.deepEqual(sim.telemetry.map((r) => r.payload), [{ marker: 1 }]);
      assert.equal(client.stats().accepted, 1);
      assert.equal(sim.invalid.length, 0);
    });

    it('writes frames that are exactly one line of valid JSON each, as protocol.md lays them out', async (t) => {
      const agent = await startRawAgent(t);
      const name = 'raw "app"\n\u00e9';
      const client = makeSDK(t, transport, agent.path, { handshakeTimeoutMs: 30_000 }, name);
      client.start();
      await waitFor(() => client.linked, 'linked');
      client.send({ text: 'line1\nline2\r\n"q"', u: '\u2028\u2029\u{1F680}' });
      client.send({ n: [1, 2.5, null] }, 'ch\n1');
      client.send({ z: 0 }, '');
      await waitFor(() => agent.conns[0]?.lines().length === 4, 'hello and 3 telemetry lines');
      const text = agent.conns[0].text();
      assert.ok(text.endsWith('\n'), 'every frame ends with a newline');
      const frames = agent.conns[0].lines().map((line) => {
        assert.ok(!line.endsWith('\r'));
        return JSON.parse(line);
      });
      assert.deepEqual(frames, [
        { signal: { sdkclient: { name, status: 'connected', version: '1.3.0' } } },
        { data: { sdkclient: { name }, payload: { text: 'line1\nline2\r\n"q"', u: '\u2028\u2029\u{1F680}' } } },
        { data: { sdkclient: { name }, payload: { n: [1, 2.5, null] }, channel: 'ch\n1' } },
        { data: { sdkclient: { name }, payload: { z: 0 } } },
      ]);
    });
  });
}
