// Worker command handlers for the simulation tests. Each tells the main thread when it starts and
// ends on the BroadcastChannel 'iottly-simtest' ({id, cmdType, phase, threadId}), so the test sees
// every invocation without sending telemetry of its own.
import { BroadcastChannel, threadId } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';

const channel = new BroadcastChannel('iottly-simtest');
channel.unref();

function note(params, context, phase, extra = {}) {
  channel.postMessage({ id: params?.id ?? null, cmdType: context.cmdType, phase, threadId, ...extra });
}

/** Returns nothing: nothing is sent. */
export async function ok(params, context) {
  note(params, context, 'start');
  note(params, context, 'end');
}

/** Returns a plain object: sent as telemetry {w: id}. */
export async function reply(params, context) {
  note(params, context, 'start');
  note(params, context, 'end');
  return { w: params.id };
}

/** Throws on purpose: reported to the agent as an error frame. */
export async function fail(params, context) {
  note(params, context, 'start');
  note(params, context, 'end');
  const err = new Error(`planted failure in worker for command ${params?.id}`);
  err.name = 'SimtestPlanted';
  throw err;
}

/** Takes a while, honouring the abort signal. */
export async function slow(params, context) {
  note(params, context, 'start');
  try {
    await sleep(40, undefined, { signal: context.signal });
  } finally {
    note(params, context, 'end');
  }
}
