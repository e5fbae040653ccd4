import { performance } from 'node:perf_hooks';

const resolved = Promise.resolve();

/**
 * Runs `fn` once the current synchronous run of code ends, as a bare promise reaction. Unlike
 * queueMicrotask, which wraps every callback in an AsyncResource, this costs a reaction and no
 * more: about 10 ns against 50 ns hot, and much more than that at 1 000 messages a second, where
 * the code runs cold once per message. `fn` must not throw (a throw would surface as an unhandled
 * rejection rather than an uncaught exception).
 */
export function whenRunEnds(fn: () => void): void {
  void resolved.then(fn);
}

/**
 * How long after a lone send another one still counts as part of the same synchronous run. A
 * sender paced by a timer (1 000 msg/s or slower) sends its messages further apart than this; the
 * calls of a send loop come within a few microseconds of one another.
 */
export const LONE_GAP_MS = 0.25;

/**
 * Tells whether a send that finds nothing waiting may go out alone, with no marker for the end of
 * its run. The marker (whenRunEnds) is a promise reaction, and at one message per timer tick, where
 * it runs cold once per message, it cost the sender 3 to 8 µs a message here: more than anything
 * else the SDK adds to a bare socket.write. So a lone send is not marked. A send that comes sooner
 * than LONE_GAP_MS after the last lone one is taken to continue its run: the transport then marks
 * the run and batches the rest of it until it ends. Either way the frames go out in order; the
 * guess decides only how they are batched.
 */
export class LoneSends {
  private last = -Infinity;
  /** True when this send may go alone and unmarked; it then becomes the last lone one. */
  alone(): boolean {
    const now = performance.now();
    if (now - this.last < LONE_GAP_MS) return false;
    this.last = now;
    return true;
  }
  /** A run's end was seen: the next send goes alone, however soon it comes. */
  runEnded(): void {
    this.last = -Infinity;
  }
}
