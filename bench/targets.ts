/**
 * Starting the servers the benches measure: tsx scripts that print
 * `READY <port>` (bench/origin.ts, bench/bare-proxy.ts) and the built
 * gateway CLI with a generated policy. Every server is pinned to
 * {@link SERVER_CPU}, logs to `<logDir>/<name>.log`, and is killed at once
 * when it fails to get ready (so a broken one does not hold CPU 0).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './harness.js';
import { SERVER_CPU, freePort, waitForPortLine, waitForReadyLine, type Child, type ChildSet } from './proc.js';

/** Every bench server listens on loopback only. */
export const HOST = '127.0.0.1';
/** How long a server may take to get ready. */
export const READY_TIMEOUT_MS = 20_000;

const node = process.execPath;

/**
 * Spawns `argv` as server `name` and waits for `ready(child)`; resolves with
 * the child and what `ready` resolved with. `pipeStdout` keeps stdout as a
 * pipe for `ready` to read (otherwise it goes to the log).
 */
export async function startServer<T>(
  children: ChildSet,
  logDir: string,
  name: string,
  argv: readonly string[],
  ready: (child: Child) => Promise<T>,
  opts: { readonly pipeStdout?: boolean } = {},
): Promise<[Child, T]> {
  const child = children.spawn(name, argv, {
    cpu: SERVER_CPU,
    pipeStdout: opts.pipeStdout ?? false,
    logFile: path.join(logDir, `${name}.log`),
    cwd: repoRoot,
  });
  try {
    return [child, await ready(child)];
  } catch (err) {
    children.kill(child);
    throw err;
  }
}

/** Starts a tsx script that prints `READY <port>`; returns it and its port. */
export function startScript(children: ChildSet, logDir: string, name: string, args: string[]): Promise<[Child, number]> {
  const argv = [node, '--import', 'tsx', ...args];
  return startServer(children, logDir, name, argv, (child) => waitForReadyLine(child, READY_TIMEOUT_MS), { pipeStdout: true });
}

/** Two distinct free ports: the gateway's public listener and its admin API. */
export async function gatewayPorts(): Promise<{ port: number; adminPort: number }> {
  const port = await freePort();
  let adminPort = await freePort();
  while (adminPort === port) adminPort = await freePort();
  return { port, adminPort };
}

/** The built gateway CLI (dist/); throws when `npm run build` has not run. */
export function gatewayCli(): string {
  const main = path.join(repoRoot, 'dist', 'gateway', 'cli', 'main.js');
  if (!existsSync(main)) throw new Error(`gateway: ${main} does not exist (did \`npm run build\` run?)`);
  return main;
}

/** What {@link policyYaml} needs. */
export interface PolicySpec {
  /** The policy's `version` (names the bench in the gateway's logs). */
  readonly version: string;
  readonly port: number;
  readonly adminPort: number;
  readonly originPort: number;
  /** Extra lines of the listener (indented YAML, e.g. `timeouts: {...}`). */
  readonly listener?: readonly string[];
}

/** The gateway policy: one listener `public`, the admin API, one catch-all route to the origin. */
export function policyYaml(spec: PolicySpec): string {
  const extra = (spec.listener ?? []).map((l) => `    ${l}\n`).join('');
  return `version: ${spec.version}
listeners:
  - name: public
    host: ${HOST}
    port: ${spec.port}
${extra}admin:
  host: ${HOST}
  port: ${spec.adminPort}
routes:
  - name: origin
    match:
      pathPrefix: /
    upstreams:
      - name: origin
        url: http://${HOST}:${spec.originPort}
`;
}

/**
 * Waits for the gateway CLI's `gateway: listening on http://HOST:PORT (public)`
 * line (stdout must be piped) and checks it is the policy's `port`: a gateway
 * that fell back to another port would be benchmarked nowhere.
 */
export async function waitForListening(child: Child, port: number): Promise<void> {
  const pattern = /^gateway: listening on http:\/\/\S+?:(\d+) \(public\)\s*$/m;
  const listening = await waitForPortLine(child, pattern, '"listening on"', READY_TIMEOUT_MS);
  if (listening !== port) throw new Error(`gateway: listening on port ${listening}, policy says ${port}`);
}

/** GET `url`: null when it answers 200 with exactly `body`, else what came back. */
export async function expectOriginBody(url: string, body: string): Promise<string | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    if (res.status === 200 && text === body) return null;
    return `GET ${url} → ${res.status}, body ${JSON.stringify(text.slice(0, 200))}`;
  } catch (err) {
    return `GET ${url} failed: ${(err as Error).message}`;
  }
}
