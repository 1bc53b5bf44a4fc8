// A loopback port nobody listens on now: the kernel's pick, released for the caller's server
// (Herald, a sink, a mock) to take. Shared by the benchmark scripts.
import net from 'node:net';

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
