// The reconnection timing both transports share while the agent's socket path is watched.

/**
 * While the path is watched, the longest wait between two attempts: a safety net for a change the
 * watch did not report. At most 0.2 attempts a second while the agent is away.
 */
export const WATCHED_RETRY_MS = 5000;

/**
 * The wait after a refused connection while the path is watched: 1 ms, then four times longer each
 * time up to WATCHED_RETRY_MS. An agent between bind() and listen() is met within a few milliseconds
 * of its listen(); a stale socket file costs six attempts in its first 1.4 s, one 4.1 s later,
 * then one every WATCHED_RETRY_MS.
 */
export function nextRefusedDelay(previous: number): number {
  return previous <= 0 ? 1 : Math.min(previous * 4, WATCHED_RETRY_MS);
}
