/**
 * The proxy bench's servers: the origin (and a second origin as the full
 * route's backup upstream) and the four proxies measured in front of it,
 * each its own process pinned to the server CPU:
 *   bare            bench/bare-proxy.ts (fastify + @fastify/http-proxy)
 *   minimal-undici  bench/minimal-undici.ts (node:http + one undici Pool)
 *   gateway-plain   the gateway, one catch-all route (targets.ts policyYaml)
 *   gateway-full    the gateway, the payment route (payment-policy.ts)
 * A proxy that fails to start is reported and left out; the origin must start.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Child, ChildSet } from './proc.js';
import { waitForHttp200 } from './proc.js';
import { BENCH_PATH, paymentPolicyYaml } from './payment-policy.js';
import { HOST, READY_TIMEOUT_MS, gatewayCli, gatewayPorts, policyYaml, startScript, startServer } from './targets.js';

/** Every target, in the order of the first round. */
export const TARGET_NAMES = ['origin', 'bare', 'minimal-undici', 'gateway-plain', 'gateway-full'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** A server under test. */
export interface Target {
  readonly name: TargetName;
  /** The name, with `*` when BENCH_GATEWAY_CMD replaced our gateway. */
  readonly label: string;
  /** What the load generators request (same path on every target). */
  readonly url: string;
  readonly command: string;
  readonly child: Child;
  /** The gateway's admin API (ours only). */
  readonly adminUrl?: string;
}

/** What {@link startTargets} brought up. */
export interface Started {
  readonly origin: Child;
  readonly targets: Target[];
  readonly failures: string[];
}

const url = (port: number): string => `http://${HOST}:${port}${BENCH_PATH}`;

/** Starts the gateway (or the BENCH_GATEWAY_CMD override) as target `name` with policy `yaml(ports)`. */
async function startGateway(
  children: ChildSet,
  logDir: string,
  name: 'gateway-plain' | 'gateway-full',
  originPort: number,
  yaml: (port: number, adminPort: number) => string,
): Promise<Target> {
  const { port, adminPort } = await gatewayPorts();
  const policy = path.join(logDir, `${name}.policy.yaml`);
  // BENCH_ACCESS_LOG=1 (or a sample such as 10%): both gateways also write an access log (a file in the log dir).
  const al = process.env.BENCH_ACCESS_LOG;
  const sample = al === undefined || al === '' || al === '0' ? null : al === '1' ? '100%' : al;
  if (sample !== null && !/^\d+(\.\d+)?%$/.test(sample)) throw new Error('BENCH_ACCESS_LOG must be 1 or a percentage (10%)');
  const accessLog = sample === null
    ? ''
    : `accessLog: { destination: ${JSON.stringify(path.join(logDir, `${name}.access.log`))}, sample: ${sample} }\n`;
  await writeFile(policy, withLimits(yaml(port, adminPort).replace(/^routes:/m, `${accessLog}routes:`)));
  const vars: Record<string, string> = {
    PORT: String(port),
    ADMIN_PORT: String(adminPort),
    ORIGIN_PORT: String(originPort),
    ORIGIN_URL: `http://${HOST}:${originPort}`,
    POLICY: policy,
  };
  const fill = (s: string): string => s.replace(/\{(\w+)\}/g, (m, k: string) => vars[k] ?? m);
  const override = process.env.BENCH_GATEWAY_CMD;
  const adminUrl = `http://${HOST}:${adminPort}`;
  const argv = override ? ['sh', '-c', fill(override)] : [process.execPath, gatewayCli(), 'run', '--policy', policy];
  const readyUrl = override ? fill(process.env.BENCH_GATEWAY_READY_URL ?? `http://${HOST}:{PORT}/`) : `${adminUrl}/healthz`;
  const [child] = await startServer(children, logDir, name, argv, (c) => waitForHttp200(c, readyUrl, READY_TIMEOUT_MS));
  const base = { name, label: override ? `${name}*` : name, url: url(port), command: argv.join(' '), child };
  return override ? base : { ...base, adminUrl };
}

/** Starts the origins, then every proxy; a proxy that fails is recorded in `failures`. */
export async function startTargets(children: ChildSet, logDir: string): Promise<Started> {
  const [origin, originPort] = await startScript(children, logDir, 'origin', ['bench/origin.ts', '0']);
  const targets: Target[] = [{ name: 'origin', label: 'origin', url: url(originPort), command: 'bench/origin.ts', child: origin }];
  const failures: string[] = [];
  const attempt = async (what: string, start: () => Promise<Target>): Promise<void> => {
    try {
      targets.push(await start());
    } catch (err) {
      failures.push(`${what} failed to start: ${(err as Error).message}`);
    }
  };
  const script = async (name: 'bare' | 'minimal-undici', file: string): Promise<Target> => {
    const [child, port] = await startScript(children, logDir, name, [file, String(originPort), '0']);
    return { name, label: name, url: url(port), command: file, child };
  };
  await attempt('bare proxy', () => script('bare', 'bench/bare-proxy.ts'));
  await attempt('minimal undici proxy', () => script('minimal-undici', 'bench/minimal-undici.ts'));
  await attempt('gateway-plain', () =>
    startGateway(children, logDir, 'gateway-plain', originPort, (port, adminPort) =>
      policyYaml({ version: 'bench-plain', port, adminPort, originPort }),
    ),
  );
  let backupPort: number | undefined;
  try {
    [, backupPort] = await startScript(children, logDir, 'origin-backup', ['bench/origin.ts', '0']);
  } catch (err) {
    failures.push(`backup origin failed to start (gateway-full not measured): ${(err as Error).message}`);
  }
  if (backupPort !== undefined) {
    const bp = backupPort;
    await attempt('gateway-full', () =>
      startGateway(children, logDir, 'gateway-full', originPort, (port, adminPort) =>
        paymentPolicyYaml({ version: 'bench-full', port, adminPort, originPort, backupPort: bp }),
      ),
    );
  }
  return { origin, targets, failures };
}

/** Checks that a target proxies for real: 200 with the origin's exact body. */
export async function sanityCheck(t: Target, originBody: string): Promise<void> {
  let res: Response;
  let body: string;
  try {
    res = await fetch(t.url, { signal: AbortSignal.timeout(5000) });
    body = await res.text();
  } catch (err) {
    throw new Error(`${t.name}: GET ${t.url} failed: ${(err as Error).message}`);
  }
  if (res.status !== 200 || body !== originBody) {
    throw new Error(`${t.name}: GET ${t.url} → ${res.status}, body ${JSON.stringify(body.slice(0, 200))} (expected 200 + origin body)`);
  }
}

/**
 * BENCH_LIMITS=1: every route of both gateways also gets overload
 * protection configured but never limiting — the gateway-wide overload gate
 * (priority critical), a per-route admission gate, a per-client-address
 * rate limit and tenant bulkheads (a per-tenant share, and a pool whose
 * route is matched first and passed over), all far above what the bench
 * sends — so the figures are the cost of the checks themselves.
 */
export function withLimits(policy: string): string {
  const on = process.env.BENCH_LIMITS;
  if (on === undefined || on === '' || on === '0') return policy;
  const at = policy.search(/^routes:/m);
  const head = policy.slice(0, at);
  const routes = policy.slice(at).replace(/^(  - name: \S+)$/gm,
    '$1\n    priority: critical\n    admission: { maxConcurrent: 100000, queue: 1000 }\n    rateLimits:\n      - { name: per-client, key: ip, limit: 100000000, window: 1s, scope: local }\n    bulkheads:\n      header: X-Tenant\n      perTenant: { maxConcurrent: 100000 }\n      pools:\n        - { name: vip, tenants: [vip-1] }');
  return `${head}overload: { maxConcurrent: 1000000 }\n${routes}`;
}
