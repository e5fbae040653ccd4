// What the simulator records about the frames it receives: the record types, the counters and the
// lists of records it keeps when keepFrames is on.

import type { SimClient } from './connection';

export interface FrameRecord { client: SimClient; frame: any; raw: string }
export interface TelemetryRecord { client: SimClient; name: string; payload: unknown; channel?: string; raw: string }
export interface CallRecord { client: SimClient; name: string; cmd: string; args: unknown }
export interface ErrorRecord { client: SimClient; name: string; type: string; msg: string }
export interface InvalidRecord { client: SimClient; raw: string; reason: string }

export interface SimCounts {
  connections: number;
  hellos: number;
  goodbyes: number;
  telemetry: number;
  calls: number;
  errors: number;
  invalid: number;
  bytes: number;
}

export function zeroCounts(): SimCounts {
  return { connections: 0, hellos: 0, goodbyes: 0, telemetry: 0, calls: 0, errors: 0, invalid: 0, bytes: 0 };
}

/**
 * The records of one simulator. With keep off every add is a no-op, so a long-running simulator
 * does not grow with what it receives; the counters live apart and are kept regardless.
 */
export class RecordLog {
  frames: FrameRecord[] = [];
  telemetry: TelemetryRecord[] = [];
  calls: CallRecord[] = [];
  errors: ErrorRecord[] = [];
  invalid: InvalidRecord[] = [];

  constructor(private readonly keep: boolean) {}

  addFrame(client: SimClient, frame: unknown, raw: string): void {
    if (this.keep) this.frames.push({ client, frame, raw });
  }
  addTelemetry(rec: TelemetryRecord): void {
    if (this.keep) this.telemetry.push(rec);
  }
  addCall(rec: CallRecord): void {
    if (this.keep) this.calls.push(rec);
  }
  addError(rec: ErrorRecord): void {
    if (this.keep) this.errors.push(rec);
  }
  addInvalid(client: SimClient, raw: string, reason: string): void {
    if (this.keep) this.invalid.push({ client, raw, reason });
  }

  /** Starts new lists; arrays handed out before stay as they were. */
  clear(): void {
    this.frames = [];
    this.telemetry = [];
    this.calls = [];
    this.errors = [];
    this.invalid = [];
  }
}
