/**
 * The metrics' view of a running gateway (metrics/source.ts), built from
 * the runtime of the moment: read at scrape time only.
 */
import type { Clock } from '../core/clock.js'
import type { Runtime } from '../proxy/runtime.js'
import type { Listener } from '../edge/listener.js'
import type { ShiftView } from '../control/controller.js'
import { OUTCOMES } from '../health/outcome.js'
import type { MetricsRoute, MetricsSource } from '../metrics/index.js'
import { routeShares } from './status.js'
import { PRIORITIES } from '../admission/overload.js'

export interface MetricsInputs {
  readonly runtime: () => Runtime
  readonly listeners: () => readonly Listener[]
  readonly shiftView: (route: string) => ShiftView | null
  readonly store: () => { kind: string, up: boolean }
  readonly clock: Clock
}

export function metricsSource (inp: MetricsInputs): MetricsSource {
  return {
    routes: () => inp.runtime().routes.map((r): MetricsRoute => {
      const shares = routeShares(r)
      const c = r.config
      const mono = inp.clock.now()
      const shift = c.shift === null ? null : inp.shiftView(c.name)
      return {
        name: c.name,
        responses: r.delivery.responses,
        delivery: r.delivery.counters,
        shift: c.shift === null ? null : { applied: r.view.backupShare, phase: shift?.phase ?? 'idle' },
        rateLimits: (r.rateLimits?.limits ?? []).map(l => ({ name: l.config.name, ...l.counters })),
        tenantCap: r.tenantCap === null ? null : { tenantsInFlight: r.tenantCap.tenants, refused: r.tenantCap.refused },
        admission: r.admission === null ? null : { limit: r.admission.limit, inflight: r.admission.inflight, waiting: r.admission.waiting, queued: r.admission.queued, refused: r.admission.refused },
        upstreams: r.upstreams.map(u => {
          const oldest = u.stats.inflight.first
          return {
            name: u.name,
            role: u.config.priority === 0 ? 'primary' : 'backup',
            weight: u.weight,
            available: u.available,
            share: shares.get(u.name) ?? 0,
            breaker: u.health.breaker?.state ?? null,
            ejected: u.health.ejectedUntil !== 0 && u.health.ejectedUntil > mono,
            healthCheckUp: c.healthCheck === null ? null : !u.health.probeDown,
            inflight: u.stats.inflight.size,
            oldestInflightMs: oldest === null ? 0 : mono - oldest.startedAt,
            probesSent: c.shift?.probe == null ? null : u.stats.probesSent,
            attempts: OUTCOMES.map((o, i) => [o, u.stats.total(i)] as const),
            latency: u.stats.latency
          }
        })
      }
    }),
    listeners: () => inp.listeners().map(l => ({ name: l.config.name, inflight: l.inflight, connections: l.connections, unrouted: l.unrouted })),
    policy: () => {
      const rt = inp.runtime()
      return { version: rt.snapshot.version, hash: rt.snapshot.hash, generation: rt.generation }
    },
    store: inp.store,
    overload: () => {
      const g = inp.runtime().overload
      if (g === null || g.config === null) return null
      return { limit: g.config.maxConcurrent, inflight: g.inflight, ceilings: Object.fromEntries(PRIORITIES.map(p => [p, g.ceiling(p)])), refused: g.refused }
    }
  }
}
