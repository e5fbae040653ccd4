'use strict';
// An agent stand-in that goes away and comes back on request (bench/cases/reconnect.js): on 'up' it
// listens on the socket path, on 'down' it drops its connections and closes (the socket file goes
// with it). It reports, on its own clock, when it listened and when the first bytes of each
// connection arrived, so that the reconnection latency needs no clock shared between processes.

const net = require('node:net');
const fs = require('node:fs');

const socketPath = process.argv[2];
const now = () => Number(process.hrtime.bigint()) / 1e6;
let server = null;
const conns = new Set();

process.on('message', (m) => {
  if (m === 'up') {
    fs.rmSync(socketPath, { force: true });
    server = net.createServer((socket) => {
      conns.add(socket);
      socket.on('close', () => conns.delete(socket));
      socket.on('error', () => {});
      socket.once('data', () => {
        process.send({ firstBytes: now() });
        socket.write('{"signal":{"sdkinit":{"version":"1.8.0"}}}\n');
      });
      socket.resume();
    });
    server.listen(socketPath, () => process.send({ listening: now() }));
  } else if (m === 'down') {
    const s = server;
    server = null;
    s.close(() => process.send({ down: true }));
    for (const c of conns) c.destroy();
  } else if (m === 'exit') {
    process.exit(0);
  }
});
process.send({ ready: true });
