'use strict';
// What the cases share: payloads of the two sizes, an SDK linked to the stand-in, the naive client
// baseline, a pacer, and small measurement helpers.

const net = require('node:net');
const { IottlySDK, SDK_VERSION } = require('../../dist/index.js');

const APP = 'bench-app';
const now = () => Number(process.hrtime.bigint());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Payload objects whose whole telemetry frame is about 120 B and about 4 KiB. */
function makePayload(size) {
  if (size === 'small') {
    return { seq: 0, ts: 1764081600123, temp: 21.37, hum: 48.2, dev: 'sensor-07' };
  }
  const samples = [];
  for (let i = 0; i < 535; i++) samples.push(Math.round(Math.sin(i / 7) * 100000) / 100);
  return { seq: 0, ts: 1764081600123, dev: 'sensor-07', unit: 'mV', samples };
}

/** The frame the SDK puts on the wire for `payload` (what the other writers send too). */
const FRAME_HEAD = `{"data":{"sdkclient":{"name":${JSON.stringify(APP)}},"payload":`;
const frameOf = (payload) => `${FRAME_HEAD}${JSON.stringify(payload)}}}\n`;
const HELLO = `{"signal":{"sdkclient":{"name":${JSON.stringify(APP)},"status":"connected","version":"${SDK_VERSION}"}}}\n`;

/**
 * An IottlySDK on `transport`, started and past its handshake with the stand-in. `SDK` is the class:
 * this checkout's, or one loaded from another build to compare two versions in one process.
 */
async function linkedSDK(transport, socketPath, options = {}, SDK = IottlySDK) {
  const sdk = new SDK(APP, { socketPath, transport, ...options });
  if (sdk.transport !== transport) throw new Error(`asked for transport ${transport}, got ${sdk.transport}`);
  const started = new Promise((resolve) => {
    const on = (s) => {
      if (s === 'started') {
        sdk.off('agentStatus', on);
        resolve();
      }
    };
    sdk.on('agentStatus', on);
  });
  sdk.start();
  await withTimeout(started, 10_000, 'SDK link to the stand-in');
  return sdk;
}

/** Calls `send(i)` `count` times, once per event-loop turn: a warm-up of a sender's lone-message path. */
async function warmSender(send, count) {
  for (let i = 0; i < count; i++) {
    send(i);
    await new Promise(setImmediate);
  }
}

/** The baseline a user writes without the SDK: net.createConnection and one socket.write per frame. */
function naiveClient(socketPath) {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath }, () => {
      socket.write(HELLO);
      resolve({
        socket,
        send(payload) {
          return socket.write(JSON.stringify({ data: { sdkclient: { name: APP }, payload } }) + '\n');
        },
        close: () => new Promise((r) => socket.end(r)),
      });
    });
    socket.on('data', () => {});
    socket.once('error', reject);
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Calls `sendBatch(count)` from a 1 ms timer so that `rate` messages a second go out on average,
 * catching up after late ticks, for `seconds`. Resolves with how many were sent.
 */
function pace(rate, seconds, sendBatch) {
  return new Promise((resolve) => {
    const t0 = now();
    let sent = 0;
    const total = Math.round(rate * seconds);
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((now() - t0) / 1e9) * rate));
      if (due > sent) {
        sendBatch(due - sent, sent);
        sent = due;
      }
      if (sent >= total) {
        clearInterval(timer);
        resolve(sent);
      }
    }, 1);
  });
}

/**
 * A copy of `items` in uniformly random order (Fisher–Yates), drawing from `random` (Math.random by
 * default). Sorting with a random comparator is not uniform: for four senders, V8's sort puts the
 * first one first 36% of the time and the second one last 9%, and so decides who follows whom.
 */
function shuffled(items, random = Math.random) {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const cpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
const rssMB = () => process.memoryUsage.rss() / 1048576;

module.exports = { APP, HELLO, FRAME_HEAD, now, sleep, makePayload, frameOf, linkedSDK, naiveClient, warmSender, withTimeout, pace, shuffled, cpuUs, rssMB };
