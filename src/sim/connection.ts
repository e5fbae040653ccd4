// One accepted SDK connection: the view the simulator's users get (SimClient) and the state the
// simulator keeps for it (a frame split across reads, reply timers, whether it is gone).

import type * as net from 'node:net';

/** One accepted connection. */
export interface SimClient {
  readonly id: number;
  /** From the hello (or null before it). */
  name: string | null;
  /** From the hello (or null before it, or when the hello carried none). */
  sdkVersion: string | null;
  /** true if the first frame on this connection was the hello; null before any frame. */
  helloFirst: boolean | null;
  readonly socket: net.Socket;
}

export class Connection implements SimClient {
  name: string | null = null;
  sdkVersion: string | null = null;
  helloFirst: boolean | null = null;
  /** Bytes of an incomplete frame, in arrival order (chunks are referenced, not copied). */
  pending: Buffer[] = [];
  pendingLen = 0;
  /** Inside an oversized line: drop bytes until the next newline. */
  skipping = false;
  /** The simulator destroyed this connection (close/kill/reboot); not a peer close. */
  droppedByUs = false;
  ended = false;
  gone = false;
  timers = new Set<NodeJS.Timeout>();
  /** Resolves once 'disconnect' has been emitted for this connection. */
  readonly done: Promise<void>;
  markDone: () => void = () => {};

  constructor(readonly id: number, readonly socket: net.Socket) {
    this.done = new Promise<void>((resolve) => {
      this.markDone = resolve;
    });
  }
}

/** How log lines name a connection. */
export function label(c: SimClient): string {
  return c.name === null ? `#${c.id}` : `#${c.id} ${JSON.stringify(c.name)}`;
}
