/**
 * Benchmark origin: the smallest useful HTTP server.
 *
 * Answers every request with `200 text/plain` and a fixed ~100-byte body,
 * after consuming the request body. Used as the upstream for all benchmark
 * targets so that differences between targets are the proxy's cost only.
 *
 * Usage: `node --import tsx bench/origin.ts [port]` (or env `PORT`).
 * Port 0 (the default) picks a free port. Prints `READY <port>` on stdout
 * once listening.
 */
import { createServer } from 'node:http';
import { announce, exitOnSignal } from './serve.js';

// The response body every request gets (exactly 100 bytes).
const ORIGIN_BODY = Buffer.from(`${'origin-ok '.repeat(9)}origin-ok\n`);

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, {
      'content-type': 'text/plain',
      'content-length': ORIGIN_BODY.length,
    });
    res.end(ORIGIN_BODY);
  });
});

// Keep idle keep-alive connections (from proxies' pools) open across runs.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;

server.listen(port, '127.0.0.1', () => announce(server));
exitOnSignal(() => {
  server.close();
  server.closeAllConnections();
});
