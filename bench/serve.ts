/**
 * What the bench's stand-alone servers (origin.ts, bare-proxy.ts,
 * minimal-undici.ts) share: their command line, the `READY <port>` line
 * the bench waits for, and a stop on SIGINT/SIGTERM.
 */
import type { AddressInfo } from 'node:net';

/** `<originPort|upstreamUrl> [port]` (or env UPSTREAM / ORIGIN_PORT and PORT); usage and exit 2 without an upstream. */
export function upstreamArgs(script: string): { upstream: string; port: number } {
  const arg = process.argv[2] ?? process.env.UPSTREAM ?? process.env.ORIGIN_PORT;
  if (!arg) {
    process.stderr.write(`usage: ${script} <originPort|upstreamUrl> [port]\n`);
    process.exit(2);
  }
  const upstream = /^\d+$/.test(arg) ? `http://127.0.0.1:${arg}` : arg;
  return { upstream, port: Number(process.argv[3] ?? process.env.PORT ?? 0) };
}

/** Prints `READY <port>` for the listening server. */
export function announce(server: { address(): AddressInfo | string | null }): void {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`READY ${port}\n`);
}

/** On SIGINT or SIGTERM: `stop()`, then exit 0 (after 1 s at the latest). */
export function exitOnSignal(stop: () => unknown): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      void Promise.resolve()
        .then(stop)
        .finally(() => process.exit(0));
      setTimeout(() => process.exit(0), 1000).unref();
    });
  }
}
