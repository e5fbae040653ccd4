'use strict';
// Parent-side handle on the agent stand-in (agent-process.js), which runs in a child process.

const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

class StandInAgent {
  constructor(child, dir) {
    this.child = child;
    this.dir = dir;
    this.socketPath = path.join(dir, 'agent.sock');
    this.nextId = 1;
    this.pending = new Map();
    child.on('message', (msg) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok === false) p.reject(new Error(`agent: ${msg.error}`));
      else p.resolve(msg);
    });
    child.on('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`agent stand-in exited (${code})`));
      this.pending.clear();
    });
  }

  request(op, args = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, op, ...args });
    });
  }

  listen() {
    return this.request('listen', { path: this.socketPath });
  }
  /** Start a new trial: only connections accepted after this count ({ adopt: true }: and those open now). */
  reset(opts = {}) {
    return this.request('reset', opts);
  }
  /** Resolves once `n` telemetry lines of this trial have arrived, with the time of the last one. */
  expect(n, timeoutMs = 60_000) {
    let timer;
    return Promise.race([
      this.request('expect', { n }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`agent stand-in: ${n} lines did not arrive in ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }
  stats(opts = {}) {
    return this.request('stats', opts);
  }
  commands(n, intervalMs, type = 'bench') {
    return this.request('commands', { n, intervalMs, type });
  }
  /** Read at most `bytesPerSec` from here on; 0 reads freely again. */
  throttle(bytesPerSec) {
    return this.request('throttle', { bytesPerSec });
  }
  closeServer() {
    return this.request('close');
  }

  async stop() {
    try {
      await this.request('close');
    } catch {}
    this.child.disconnect();
    await new Promise((r) => (this.child.exitCode !== null ? r() : this.child.once('exit', r)));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Fork the stand-in; `listen: false` leaves the socket absent (an agent that is away). */
async function startAgent({ listen = true } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iottly-bench-'));
  const child = fork(path.join(__dirname, 'agent-process.js'), [], {
    execPath: process.execPath,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('error', reject);
  });
  const agent = new StandInAgent(child, dir);
  if (listen) await agent.listen();
  return agent;
}

module.exports = { startAgent };
