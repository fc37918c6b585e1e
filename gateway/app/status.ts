/**
 * The /status document: policy identity, routes, upstreams with their
 * configured weight and current share, counters and latency quantiles.
 * Upstreams are shown by origin only (no credentials, no paths).
 */
import type { Runtime, RuntimeRoute, RuntimeUpstream } from '../proxy/runtime.js'
import type { ReloadRecord } from './reload.js'
import type { Clock } from '../core/clock.js'
import type { ShiftView } from '../control/controller.js'
import type { ProbeState } from '../control/prober.js'
import { RESPONSE_CLASSES, type ResponseTally } from '../core/response-tally.js'
import { ERRORS } from '../core/errors.js'

/** Gateway codes of requests refused without reaching an upstream (503s the gateway answered itself): "shed". */
const SHED_CODES: ReadonlySet<string> = new Set(Object.values(ERRORS).filter(e => e.status === 503).map(e => e.code))

/** What clients got from a route, by status class, and how many the gateway shed itself. */
export function responseCounts (t: ResponseTally): Record<string, number> {
  const out: Record<string, number> = {}
  RESPONSE_CLASSES.forEach((c, i) => { out[c] = t.byClass[i] as number })
  let shed = 0
  for (const [code, n] of t.errors) if (SHED_CODES.has(code)) shed += n
  out.shed = shed
  return out
}

/** Expected share of the route's traffic per upstream, as RuntimeRoute.pick() splits it now. */
export function routeShares (route: RuntimeRoute): Map<string, number> {
  const shares = new Map<string, number>()
  const live = (level: readonly RuntimeUpstream[]): number => level.reduce((n, u) => n + (u.available && u.weight > 0 ? u.weight : 0), 0)
  const first = route.levels.findIndex(level => live(level) > 0)
  const backup = first === 0 ? route.levels.findIndex((level, i) => i > 0 && live(level) > 0) : -1
  const backupShare = backup > 0 ? route.effectiveBackupShare() : 0
  route.levels.forEach((level, i) => {
    const levelShare = i === first ? 1 - backupShare : i === backup ? backupShare : 0
    const total = live(level)
    for (const u of level) {
      const w = u.available && u.weight > 0 ? u.weight : 0
      shares.set(u.name, total === 0 ? 0 : Math.round(levelShare * (w / total) * 10_000) / 10_000)
    }
  })
  return shares
}

export function buildStatus (rt: Runtime, lastReload: ReloadRecord | null, startedAt: number, clock: Clock,
  shiftView: (route: string) => ShiftView | object | null, probeState: (key: string) => ProbeState): object {
  const s = rt.snapshot
  const now = clock.wall()
  const mono = clock.now()
  return {
    gateway: { pid: process.pid, node: process.version, startedAt: new Date(startedAt).toISOString(), uptimeSeconds: Math.round((now - startedAt) / 1000) },
    policy: {
      version: s.version,
      hash: s.hash,
      file: s.file,
      generation: rt.generation,
      loadedAt: new Date(rt.loadedAt).toISOString(),
      lastReload
    },
    routes: rt.routes.map(r => {
      const shares = routeShares(r)
      const c = r.config
      return {
        name: c.name,
        match: {
          pathPrefix: c.pathPrefix,
          host: c.host === null ? null : 'exact' in c.host ? c.host.exact : `*${c.host.suffix}`,
          methods: c.methods === null ? null : [...c.methods],
          headers: c.headers === null ? null : Object.fromEntries(c.headers)
        },
        bulkhead: c.tenant === null ? null : { route: c.tenant.route, pool: c.tenant.pool, header: c.tenant.header, tenants: c.tenant.values.size },
        timeoutsMs: c.timeouts,
        priority: c.priority,
        shift: c.shift === null ? null : { applied: r.view.backupShare, quantile: c.shift.quantile, thresholdMs: c.shift.thresholdMs, recoverMs: c.shift.recover.thresholdMs, ...shiftView(c.name) },
        responses: responseCounts(r.delivery.responses),
        delivery: { ...r.delivery.counters, hedgeDelayMs: c.hedge === null ? null : r.view.hedgeDelayMs },
        websocket: { enabled: c.websocket.enabled, idleTimeoutMs: c.websocket.idleTimeoutMs, ...r.delivery.upgrades },
        rateLimits: (r.rateLimits?.limits ?? []).map(l => ({
          name: l.config.name,
          key: l.config.key.kind === 'header' ? `header:${l.config.key.header}` : l.config.key.kind,
          limit: l.config.limit,
          windowMs: l.config.windowMs,
          scope: l.config.scope,
          storeDown: l.config.storeDown,
          keysHeldLocally: l.local.size,
          allowed: l.counters.allowed,
          refused: l.counters.refused,
          decidedByStoreDown: l.counters.storeDown
        })),
        perTenant: r.tenantCap === null ? null : { header: r.tenantCap.config.header, maxConcurrent: r.tenantCap.config.maxConcurrent, tenantsInFlight: r.tenantCap.tenants, busiestInFlight: r.tenantCap.busiest(), admitted: r.tenantCap.admitted, refused: r.tenantCap.refused },
        admission: r.admission === null
          ? null
          : { ...r.admission.config, limit: r.admission.limit, inflight: r.admission.inflight, waiting: r.admission.waiting, admitted: r.admission.admitted, queued: r.admission.queued, refused: { ...r.admission.refused } },
        upstreams: r.upstreams.map(u => {
          const v = u.stats.view()
          return {
            name: u.name,
            origin: u.config.origin,
            priority: u.config.priority,
            tls: u.config.tls === null ? null : { servername: u.config.tls.servername, minVersion: u.config.tls.minVersion, verify: u.config.tls.verify, ca: u.config.tls.files.ca === null ? 'system' : 'custom', clientCertificate: u.config.tls.files.cert !== null },
            role: u.config.priority === 0 ? 'primary' : 'backup',
            weight: u.weight,
            available: u.available,
            share: shares.get(u.name) ?? 0,
            breaker: u.health.breaker?.state ?? null,
            held: u.health.drained || u.health.forcedBreaker !== null ? { drained: u.health.drained, breaker: u.health.forcedBreaker } : null,
            ejectedForMs: u.health.ejectedUntil === 0 ? 0 : Math.max(0, Math.round(u.health.ejectedUntil - mono)),
            healthCheck: c.healthCheck === null ? null : probeState(u.config.key),
            inflight: v.inflight,
            oldestInflightMs: v.oldestInflightMs,
            probes: c.shift?.probe == null ? null : v.probes,
            window: v.window,
            total: v.total
          }
        })
      }
    })
  }
}
