// The simulator's reboot stops accepting before it drops its clients: a client that reconnects the
// moment it is dropped must find no listener (and retry), never a connection that the kernel queued
// on the closing listener and that is then reset without the simulator ever seeing it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startSim, waitFor, DEADLINE_MS, SLOWDOWN } from './helpers.mjs';

const CLIENT = fileURLToPath(new URL('./fixtures/eager-client.mjs', import.meta.url));

describe('simulator reboot', () => {
  it('every connection a client made was accepted by the simulator, across 40 quick reboots', async (t) => {
    const sim = await startSim(t);
    const runMs = 30_000 * SLOWDOWN;
    let child;
    const client = new Promise((resolve, reject) => {
      child = execFile(process.execPath, [CLIENT, sim.socketPath, String(runMs)], { timeout: runMs + DEADLINE_MS }, (err, stdout) =>
        err ? reject(err) : resolve(JSON.parse(stdout)),
      );
    });
    // The client is back when its hello has arrived, not merely when the simulator accepted it: the
    // client writes the hello from its 'connect' handler, so by then it has counted the connection.
    // (Accepted is not enough: a client process slow to run could see its stdin end, and exit,
    // before it handles its own 'connect'.) Each reboot waits for that, so every one drops a live
    // client.
    const back = () => sim.clients.length === 1 && sim.clients[0].name !== null;
    const reboots = 40;
    for (let i = 0; i < reboots; i++) {
      await waitFor(back, `the client back after reboot ${i}`);
      await sim.reboot({ downMs: 5, quietMs: 0, maxWaitMs: 0 });
    }
    await waitFor(back, 'the client back after the last reboot');
    child.stdin.end();
    const { established } = await client;
    assert.ok(established >= reboots, `the client reconnected after each reboot (${established} connections)`);
    assert.equal(sim.counts.connections, established, 'connections established by the client and seen by the simulator');
  });
});
