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
import { announce, exitOnSignal, upstreamArgs } from './serve.js';

const { upstream, port } = upstreamArgs('bare-proxy.ts');

const app = Fastify({ logger: false });
await app.register(proxy, { upstream, prefix: '/' });
await app.listen({ host: '127.0.0.1', port });

announce(app.server);
exitOnSignal(() => app.close());
