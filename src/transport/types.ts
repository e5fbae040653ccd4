/**
 * The boundary between the protocol (TypeScript, in IottlySDK) and the bytes (a transport).
 * Both the pure-JS transport and the native addon implement it; the SDK core sees nothing else.
 *
 * A transport owns the socket, the reconnect loop and the outbound queue with its policy:
 *  - the hello frame is written first on every new connection;
 *  - while not linked at most `maxBufferedMsgs` telemetry frames are kept, oldest dropped first;
 *  - while linked, queued-but-unwritten telemetry is bounded by `maxQueueBytes`, oldest dropped first;
 *    when the link drops, the newest `maxBufferedMsgs` of them are kept;
 *  - a frame cut by a broken connection is re-sent whole on the next connection;
 *  - call frames (callAgent) and report frames (callback errors) go out ahead of queued telemetry,
 *    at a frame boundary, and are never kept across a disconnect; while linked, at most
 *    `maxQueueBytes` of them wait to be written, and one that would pass that bound is dropped.
 *    Call frames lost either way are counted (droppedCalls) and reported with onDrop('calls');
 *    report frames are best-effort and are not counted as calls.
 */

import type { FrameEncoder } from '../codec';

export type TransportKind = 'js' | 'native';

export interface TransportOptions {
  socketPath: string;
  reconnectIntervalMs: number;
  /** Count bound on telemetry kept while the agent is unreachable. */
  maxBufferedMsgs: number;
  /**
   * Byte bound on telemetry queued but not yet written while linked. The JS transport counts a
   * frame's characters (its size in memory; equal to its UTF-8 size for ASCII), the native one its
   * UTF-8 bytes.
   */
  maxQueueBytes: number;
  /** send() reports backpressure (returns false) once this many bytes are queued. */
  highWaterMark: number;
  /** Largest inbound frame kept; longer lines are skipped to the next newline. */
  maxFrameBytes: number;
}

/**
 * 'overflow' and 'stop': telemetry (see the buffer policy above). 'calls': callAgent() frames lost
 * because the link dropped before they were written, or because more than maxQueueBytes of calls
 * were already waiting.
 */
export type DropReason = 'overflow' | 'stop' | 'calls';

export interface TransportEvents {
  /** The socket connected; the hello is already the first frame on it. */
  onLink(): void;
  /** The link was lost (EOF or error). Not called for a connection closed by stop(). */
  onUnlink(error: Error | null): void;
  /** A connection attempt failed; the transport retries after reconnectIntervalMs. */
  onConnectError(error: Error): void;
  /**
   * Complete inbound lines, without the newline, trailing '\r' removed, empty lines left out. The
   * Buffers may be views of memory the transport reuses once this returns: copy what must be kept.
   */
  onFrames(frames: Buffer[]): void;
  /** An inbound line longer than maxFrameBytes was skipped; `bytes` is how long it was. */
  onOversize(bytes: number): void;
  /** Queued telemetry was discarded by the buffer policy. */
  onDrop(reason: DropReason, count: number): void;
  /** The queue fell back under the high-water mark after send() returned false. */
  onDrain(): void;
}

export interface TransportCounters {
  /** Telemetry frames fully handed to the kernel. */
  written: number;
  /** Bytes of every frame (hello, telemetry, calls, goodbye) handed to the kernel. */
  bytesWritten: number;
  /** Telemetry frames currently queued or in flight. */
  buffered: number;
  bufferedBytes: number;
  droppedOverflow: number;
  droppedStop: number;
  /** Call frames lost: the link dropped before they were written, or the call bound was passed. */
  droppedCalls: number;
  /** callAgent() frames fully handed to the kernel (report frames are not counted). */
  callsWritten: number;
  /** callAgent() frames queued or in flight. */
  callsBuffered: number;
  /** Connections made after the first one. */
  reconnects: number;
  connectErrors: number;
  oversizeFrames: number;
}

export interface Transport {
  readonly kind: TransportKind;
  readonly linked: boolean;
  /** Begin connecting; `hello` (a complete frame, newline included) opens every connection. */
  start(hello: string): void;
  /** Queue one complete telemetry frame. Returns false while at or over the high-water mark. */
  send(frame: string): boolean;
  /**
   * Serialise `msg` (a plain object) with `encoder` and queue it, as send() does with a frame; the
   * transport chooses the form (a string, or UTF-8 bytes written straight into its staging). Throws
   * the encoder's ValueError, having queued nothing, when `msg` cannot be serialised.
   */
  sendTelemetry(encoder: FrameEncoder, msg: object, channel: string | undefined): boolean;
  /**
   * Queue a callAgent() frame ahead of telemetry. Returns false when it was dropped instead (not
   * linked, or over the call bound): then it is counted in droppedCalls and onDrop('calls', 1) follows.
   */
  call(frame: string): boolean;
  /** Queue a report frame (a callback error) like a call, but best-effort and not counted as a call. */
  report(frame: string): void;
  /** While held, nothing new is written (queued data stays queued): used while the agent is stopping. */
  hold(held: boolean): void;
  /**
   * Write what is queued (at most `timeoutMs`), then `goodbye` if linked, then close.
   * Telemetry still queued afterwards is dropped with reason 'stop'. Resolves once the socket and
   * every timer are gone. The transport may be started again afterwards.
   */
  stop(goodbye: string, timeoutMs: number): Promise<void>;
  counters(): TransportCounters;
  ref(): void;
  unref(): void;
}

export type TransportFactory = (options: TransportOptions, events: TransportEvents) => Transport;
