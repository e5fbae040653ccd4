// Scripted agent behaviour built from the simulator's primitives: a scheduled reboot and an MQTT
// flap. They run against a ScenarioTarget, the few things of the simulator they need.

import { setTimeout as sleep } from 'node:timers/promises';

export interface RebootOptions {
  /** How long the socket stays absent; default 300 ms. */
  downMs?: number;
  /** After "stopping", wait until no inbound bytes arrived for this long; default 100 ms. */
  quietMs?: number;
  /** Upper bound on the wait for quiet, so a client that never pauses cannot stall the reboot; default 2000 ms. */
  maxWaitMs?: number;
}

export interface ScenarioTarget {
  /** Changes when the simulator is closed or killed; a scenario that sees it change stops short. */
  epoch(): number;
  /** Date.now() when the last inbound byte arrived (0 before any). */
  lastByteAt(): number;
  sendAgentStatus(status: string): number;
  sendConnectionStatus(status: 'connected' | 'disconnected'): number;
  /** Stops listening and drops every client; resolves once each one's 'disconnect' was emitted. */
  shutdown(): Promise<void>;
  listen(): Promise<void>;
  log(line: string): void;
}

export async function reboot(sim: ScenarioTarget, opts: RebootOptions): Promise<void> {
  const downMs = opts.downMs ?? 300;
  const quietMs = opts.quietMs ?? 100;
  const maxWaitMs = opts.maxWaitMs ?? 2000;
  for (const [name, v] of [['downMs', downMs], ['quietMs', quietMs], ['maxWaitMs', maxWaitMs]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new RangeError(`reboot options.${name} must be a non-negative number`);
    }
  }
  const epoch = sim.epoch();
  sim.log('reboot: sending agentstatus "stopping"');
  sim.sendAgentStatus('stopping');
  const t0 = Date.now();
  for (;;) {
    const now = Date.now();
    const quietFor = now - Math.max(t0, sim.lastByteAt());
    if (quietFor >= quietMs || now - t0 >= maxWaitMs) break;
    await sleep(Math.max(1, Math.min(quietMs - quietFor, maxWaitMs - (now - t0))));
    if (epoch !== sim.epoch()) return;
  }
  sim.log('reboot: going down');
  await sim.shutdown();
  await sleep(downMs);
  if (epoch !== sim.epoch()) return;
  try {
    await sim.listen();
  } catch (err) {
    if (epoch !== sim.epoch()) return; // closed or killed meanwhile: stay down
    throw err;
  }
  sim.log('reboot: back up');
}

export async function flapMqtt(sim: ScenarioTarget, downMs: number): Promise<void> {
  if (typeof downMs !== 'number' || !Number.isFinite(downMs) || downMs < 0) {
    throw new RangeError('downMs must be a non-negative number');
  }
  sim.sendConnectionStatus('disconnected');
  await sleep(downMs);
  sim.sendConnectionStatus('connected');
}
