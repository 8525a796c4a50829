// A free loopback TCP port for a child process to listen on (Prometheus, nats-server, engine nodes),
// checked by binding it once and then released for the child to take.
//
// Why not the kernel's choice (listen on port 0): that comes from the ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 here), the same range every outgoing
// connection takes its local port from. A server restarted on its old port (the nats-server fault
// tests) then found it taken by some client's socket ("bind: address already in use", seen in a
// full-suite run). Ports below that range are never handed out to outgoing connections.

import { createServer } from 'node:net';

/** Below the usual ephemeral range (Linux 32768+), above the well-known and registered-port crowd. */
export const testPortMin = 20_000;
export const testPortMax = 32_000;
/** Random picks tried before giving up (each one is a bind that failed: the port is in use). */
export const freePortAttemptsMax = 50;

function tryBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < freePortAttemptsMax; attempt++) {
    const port = testPortMin + Math.floor(Math.random() * (testPortMax - testPortMin));
    if (await tryBind(port)) return port;
  }
  throw new Error(`freePort: no free loopback port in ${testPortMin}-${testPortMax} after ${freePortAttemptsMax} tries`);
}
