/**
 * Benchmark baseline: a bare `@fastify/http-proxy` in front of the origin.
 *
 * Fastify 5 + @fastify/http-proxy 11 with default options, logger off,
 * forwarding every path and method to the upstream. This is the reference
 * "what does a plain Node reverse proxy cost" point the gateway is compared
 * against.
 *
 * Usage: `node --import tsx bench/bare-proxy.ts <upstream> [port]`
 *   - upstream: an origin port (`8080`) or URL (`http://127.0.0.1:8080`);
 *     env `UPSTREAM` or `ORIGIN_PORT` also work.
 *   - port: listen port (env `PORT`), default 0 = pick a free one.
 * Prints `READY <port>` on stdout once listening.
 */
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';
import type { AddressInfo } from 'node:net';

const upstreamArg = process.argv[2] ?? process.env.UPSTREAM ?? process.env.ORIGIN_PORT;
if (!upstreamArg) {
  process.stderr.write('usage: bare-proxy.ts <originPort|upstreamUrl> [port]\n');
  process.exit(2);
}
const upstream = /^\d+$/.test(upstreamArg) ? `http://127.0.0.1:${upstreamArg}` : upstreamArg;
const port = Number(process.argv[3] ?? process.env.PORT ?? 0);

const app = Fastify({ logger: false });
await app.register(proxy, { upstream, prefix: '/' });
await app.listen({ host: '127.0.0.1', port });

const { port: real } = app.server.address() as AddressInfo;
process.stdout.write(`READY ${real}\n`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    void app.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
