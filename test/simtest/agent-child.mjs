// The scripted agent in a process of its own (forked by ChildAgent in agent.mjs), so that the
// simulation can SIGKILL a real agent. Operations arrive as {call, method, args} over IPC and are
// answered with {reply, result | error}; records of what arrived are posted as {rec} at each read.
// Run by accident without an IPC channel it does nothing.
import { ScriptedAgent } from './agent.mjs';

if (process.send) {
  let agent = null;
  const post = (rec) => process.send({ rec });
  const bytes = (x) => (typeof x === 'string' ? x : Buffer.from(x));
  const methods = {
    ping: () => true,
    listen: async (socketPath) => agent.listen(socketPath),
    unlisten: async (leave) => {
      await agent.unlisten(leave);
      return agent.mode;
    },
    removePath: () => {
      agent.removePath();
      return agent.mode;
    },
    write: (data) => agent.write(bytes(data)),
    writeSplit: (parts) => agent.writeSplit(parts.map(bytes)),
    setReading: (state) => agent.setReading(state),
    endCurrent: () => agent.endCurrent(),
    destroyCurrent: () => agent.destroyCurrent(),
    resumeAll: () => agent.resumeAll(),
    setAutoSdkinit: (v) => agent.setAutoSdkinit(v),
    writeAndDestroy: (data) => agent.writeAndDestroy(bytes(data)),
    close: async () => {
      await agent.close();
      setImmediate(() => process.exit(0));
      return true;
    },
  };
  process.on('message', async (m) => {
    if (!m || !m.call) return;
    if (m.method === 'init') {
      agent = new ScriptedAgent(m.args[0], post);
      process.send({ reply: m.call, result: true });
      return;
    }
    try {
      const result = await methods[m.method](...(m.args ?? []));
      process.send({ reply: m.call, result: result ?? null });
    } catch (err) {
      process.send({ reply: m.call, error: String(err?.stack ?? err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
