/**
 * The agent-status state machine: the one place that decides when 'started' and 'stopped' are
 * reported, so that the sequence the application sees is always well-formed:
 *  - 'started' at most once per connection, on sdkinit or after the handshake timeout;
 *  - every 'started' followed by exactly one 'stopped' (link lost, or stop());
 *  - nothing once stop() has begun, except the 'stopped' that closes an open 'started';
 *  - statuses the agent reports ('stopping', ...) passed through only while a connection of a
 *    running SDK is up.
 *
 *   idle --link--> linking --sdkinit | timeout--> started --unlink | stop--> idle
 *                  linking --unlink | stop--> idle (nothing reported)
 */

/** What the machine reports; the SDK turns it into callbacks and events. */
export interface AgentStatusSink {
  status(status: string): void;
}

type Phase = 'idle' | 'linking' | 'started';

export class AgentStatusMachine {
  private phase: Phase = 'idle';
  /** False from stop() until the next start(): no new connection may report 'started'. */
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private knownVersion: string | null = null;
  private unversioned = false;

  constructor(
    private readonly handshakeTimeoutMs: number,
    private readonly sink: AgentStatusSink,
  ) {}

  /** The agent version learnt from the last sdkinit; null when unknown or the agent is older than 1.8.0. */
  get version(): string | null {
    return this.knownVersion;
  }

  /** The last agent met announced no version (it was started after the handshake timeout). */
  get metUnversioned(): boolean {
    return this.unversioned;
  }

  /** True between 'started' and the 'stopped' that follows it. */
  get started(): boolean {
    return this.phase === 'started';
  }

  start(): void {
    this.running = true;
  }

  /** The transport connected: wait for sdkinit, or treat the agent as older than 1.8.0 after the timeout. */
  link(): void {
    this.closeOpenStart();
    if (!this.running) return;
    this.phase = 'linking';
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.phase !== 'linking' || !this.running) return;
      // No sdkinit on this connection: an agent older than 1.8.0.
      this.knownVersion = null;
      this.unversioned = true;
      this.enterStarted();
    }, this.handshakeTimeoutMs);
    this.timer.unref();
  }

  sdkinit(version: string): void {
    if (!this.running || this.phase === 'idle') return;
    this.knownVersion = version;
    this.unversioned = false;
    if (this.phase === 'linking') this.enterStarted();
  }

  /** An agentstatus frame: passed through as received while a running SDK's connection is up. */
  agentReported(status: string): void {
    if (!this.running || this.phase === 'idle') return;
    this.sink.status(status);
  }

  /** The connection was lost (not closed by stop()). */
  unlink(): void {
    this.closeOpenStart();
  }

  /** stop() began: nothing new is reported from here on. */
  stopping(): void {
    this.running = false;
    this.clearTimer();
  }

  /** stop() has closed the connection: an open 'started' gets its 'stopped'. */
  stopped(): void {
    this.running = false;
    this.closeOpenStart();
  }

  private enterStarted(): void {
    this.clearTimer();
    this.phase = 'started';
    this.sink.status('started');
  }

  private closeOpenStart(): void {
    this.clearTimer();
    const wasStarted = this.phase === 'started';
    this.phase = 'idle';
    if (wasStarted) this.sink.status('stopped');
  }

  private clearTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
