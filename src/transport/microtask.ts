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
