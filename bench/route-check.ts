/**
 * After the load: asks the full gateway's admin API (`GET /status`) where
 * the payment route's traffic went, so a run in which the shift, a breaker,
 * an ejection or retries moved traffic to the backup is flagged instead of
 * silently measuring something else. Parses defensively: a /status shape it
 * does not know gives "unknown", never a crash.
 */
import { BACKUP, PAYMENT_ROUTE, PRIMARY } from './payment-policy.js';

/** What the payment route did during the run. */
export interface RouteCheck {
  /** Attempts (all outcomes) per upstream. */
  readonly primaryAttempts: number;
  readonly backupAttempts: number;
  /** Attempts that ended in neither 2xx nor a client abort, both upstreams. */
  readonly failedAttempts: number;
  /**
   * Attempts dropped because the client went away: autocannon closes its
   * connections with requests in flight at the end of every run, so a few
   * per run are expected and are not failures.
   */
  readonly abortedAttempts: number;
  /** The primary's attempts by outcome (2xx, 5xx, connect, timeout, reset, aborted, …). */
  readonly primaryOutcomes: Record<string, number>;
  readonly retries: number;
  /** Share the shift controller applied to the backup at the end. */
  readonly shiftApplied: number;
  /** Breaker states / ejections seen at the end (name → state). */
  readonly breakers: Record<string, string>;
  readonly ejected: string[];
  /** Anything that says traffic did not stay on the primary. */
  readonly problems: string[];
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null;
const numOr0 = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : 0);

/** Reads `adminUrl`/status and summarises the payment route; a string says why it could not. */
export async function checkPaymentRoute(adminUrl: string): Promise<RouteCheck | string> {
  let doc: unknown;
  try {
    const res = await fetch(`${adminUrl}/status`, { signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) return `GET ${adminUrl}/status → ${res.status}`;
    doc = await res.json();
  } catch (err) {
    return `GET ${adminUrl}/status failed: ${(err as Error).message}`;
  }
  const routes = isObj(doc) && Array.isArray(doc.routes) ? (doc.routes as unknown[]) : [];
  const route = routes.find((r): r is Obj => isObj(r) && r.name === PAYMENT_ROUTE);
  if (!route || !Array.isArray(route.upstreams)) return `/status has no route "${PAYMENT_ROUTE}" with upstreams`;
  const ups = (route.upstreams as unknown[]).filter(isObj);
  const totals = (name: string): Obj => {
    const t = ups.find((u) => u.name === name)?.total;
    return isObj(t) ? t : {};
  };
  const sum = (t: Obj): number => Object.values(t).reduce<number>((a, v) => a + numOr0(v), 0);
  const failed = (t: Obj): number => sum(t) - numOr0(t['2xx']) - numOr0(t.aborted);
  const primary = totals(PRIMARY);
  const backup = totals(BACKUP);
  const breakers: Record<string, string> = {};
  const ejected: string[] = [];
  for (const u of ups) {
    if (typeof u.breaker === 'string') breakers[String(u.name)] = u.breaker;
    if (numOr0(u.ejectedForMs) > 0) ejected.push(String(u.name));
  }
  const delivery = isObj(route.delivery) ? route.delivery : {};
  const shift = isObj(route.shift) ? route.shift : {};
  const check = {
    primaryAttempts: sum(primary),
    backupAttempts: sum(backup),
    failedAttempts: failed(primary) + failed(backup),
    abortedAttempts: numOr0(primary.aborted) + numOr0(backup.aborted),
    primaryOutcomes: Object.fromEntries(Object.entries(primary).map(([k, v]) => [k, numOr0(v)])),
    retries: numOr0(delivery.retries),
    shiftApplied: numOr0(shift.applied),
    breakers,
    ejected,
  };
  const problems: string[] = [];
  if (check.primaryAttempts === 0) problems.push(`no attempts recorded on ${PRIMARY}`);
  if (check.backupAttempts > 0) problems.push(`${check.backupAttempts} attempts went to ${BACKUP}`);
  if (check.failedAttempts > 0) {
    const bad = Object.entries(check.primaryOutcomes).filter(([k, v]) => v > 0 && k !== '2xx' && k !== 'aborted');
    problems.push(`${check.failedAttempts} attempts failed (primary: ${bad.map(([k, v]) => `${k} ${v}`).join(', ') || 'none'})`);
  }
  if (check.retries > 0) problems.push(`${check.retries} retries`);
  if (check.shiftApplied > 0) problems.push(`shift left ${check.shiftApplied} of the traffic on the backup`);
  for (const [name, state] of Object.entries(breakers)) if (state !== 'closed') problems.push(`breaker of ${name} is ${state}`);
  for (const name of ejected) problems.push(`${name} is ejected`);
  return { ...check, problems };
}
