/**
 * Benchmark floor: the smallest honest reverse proxy on undici.
 *
 * node:http server + one undici `Pool` to the origin (the same pool options
 * as the gateway: keep-alive, pipelining 1). Each request is forwarded with
 * its method, path, headers and body (streamed; `null` when there is none);
 * the answer is streamed back with backpressure. Only hop-by-hop headers are
 * dropped, both ways: connection, keep-alive, proxy-connection,
 * transfer-encoding, te, trailer, upgrade and every header the Connection
 * header names. No routing, no X-Forwarded-*, no timeouts beyond undici's
 * defaults, no retries: what any gateway built on undici pays at least.
 * A client that goes away aborts the upstream request; an upstream error
 * before the answer gives 502, after it a reset.
 *
 * Usage: `node --import tsx bench/minimal-undici.ts <upstream> [port]`
 *   - upstream: an origin port (`8080`) or URL (`http://127.0.0.1:8080`).
 *   - port: listen port, default 0 = pick a free one.
 * Prints `READY <port>` on stdout once listening.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { announce, exitOnSignal, upstreamArgs } from './serve.js';

const { upstream, port } = upstreamArgs('minimal-undici.ts');

const pool = new Pool(upstream, { keepAliveTimeout: 4000, keepAliveMaxTimeout: 60_000, pipelining: 1 });

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

/** A flat [name, value, …] list without hop-by-hop headers and those Connection names. */
function endToEnd(raw: readonly string[]): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== 'connection') continue;
    named ??= new Set();
    for (const token of (raw[i + 1] as string).split(',')) named.add(token.trim().toLowerCase());
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = (raw[i] as string).toLowerCase();
    if (!HOP_BY_HOP.has(lower) && !named?.has(lower)) out.push(raw[i] as string, raw[i + 1] as string);
  }
  return out;
}

/** Streams one upstream answer into `res` (undici's legacy handler API, as the gateway uses). */
class Forward implements Dispatcher.DispatchHandler {
  #abort: ((err?: Error) => void) | undefined;
  #gone = false;

  constructor(private readonly res: ServerResponse) {
    res.once('close', () => {
      if (res.writableFinished) return;
      this.#gone = true;
      this.#abort?.(new Error('client went away'));
    });
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#gone) abort(new Error('client went away'));
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (status < 200) return true; // interim answer: the final one follows
    const headers = endToEnd(raw.map((b) => b.toString('latin1')));
    this.res.writeHead(status, statusText, headers);
    this.res.on('drain', resume);
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }

  onComplete(): void {
    this.res.end();
  }

  onError(err: Error): void {
    if (this.#gone) return;
    if (this.res.headersSent) {
      this.res.destroy(err);
      return;
    }
    this.res.writeHead(502, { 'content-type': 'text/plain', 'content-length': 12 }).end('bad gateway\n');
  }
}

function proxy(req: IncomingMessage, res: ServerResponse): void {
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  pool.dispatch(
    {
      method: req.method as Dispatcher.HttpMethod,
      path: req.url ?? '/',
      headers: endToEnd(req.rawHeaders),
      body: hasBody ? req : null,
    },
    new Forward(res),
  );
}

const server = createServer(proxy);
server.listen(port, '127.0.0.1', () => announce(server));
exitOnSignal(async () => {
  server.close();
  server.closeAllConnections();
  await pool.destroy();
});
