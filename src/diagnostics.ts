// What the SDK tells about itself without an event listener: `NODE_DEBUG=iottly-sdk` (util.debuglog)
// prints it to stderr, and diagnostics_channel channels carry the same for monitoring tools.
import { channel } from 'node:diagnostics_channel';
import { debuglog } from 'node:util';

const debug = debuglog('iottly-sdk');

/**
 * The channels, one per kind of happening. Each message is an object with `sdk` (the IottlySDK)
 * and the fields listed.
 */
export const CHANNELS = {
  /** The socket to the agent is connected: { sdk, socketPath }. */
  link: channel('iottly-sdk:link'),
  /** The connection to the agent was lost: { sdk, socketPath, error } (error: an Error or null). */
  unlink: channel('iottly-sdk:unlink'),
  /** A connection attempt failed: { sdk, socketPath, error }. Every attempt, not only new errors. */
  connectError: channel('iottly-sdk:connectError'),
  /** Messages or calls were dropped: { sdk, reason, count }. */
  drop: channel('iottly-sdk:drop'),
  /** An inbound frame was skipped (invalid, or longer than maxFrameBytes): { sdk, reason, bytes }. */
  frameSkipped: channel('iottly-sdk:frameSkipped'),
} as const;

export type DiagnosticKind = keyof typeof CHANNELS;

/** Whether anyone looks at `kind`: a caller on a frequent path builds the message only then. */
export function watched(kind: DiagnosticKind): boolean {
  return CHANNELS[kind].hasSubscribers || debug.enabled;
}

/** Publish `message` on the channel of `kind` and log `text()` under NODE_DEBUG, if anyone looks. */
export function tell(kind: DiagnosticKind, message: object, text: () => string): void {
  const ch = CHANNELS[kind];
  if (ch.hasSubscribers) ch.publish(message);
  if (debug.enabled) debug('%s %s', kind, text());
}
