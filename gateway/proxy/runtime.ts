/**
 * The data plane's live view of one policy snapshot: routes with their
 * balancers, and upstreams bound to their connection pool, stats and health.
 * Built aside on reload and swapped in as one reference. Attempts report
 * into each upstream's `sink`; the control plane writes only through the
 * views (views/ports.ts): each route's RouteView and each upstream's
 * availability (UpstreamHealth). RuntimeRoute is what the control plane
 * sees as a ControlRoute.
 */
import type { AdmissionGate, AdmissionRegistry } from '../admission/gate.js'
import type { OverloadGate } from '../admission/overload.js'
import type { TenantCap } from '../admission/tenant-cap.js'
import type { RateLimitRegistry, RouteRateLimits } from '../ratelimit/route-limits.js'
import type { Dispatcher } from 'undici'
import type { PolicySnapshot, RouteConfig, UpstreamConfig } from '../policy/snapshot.js'
import type { StatsRegistry } from '../health/stats-registry.js'
import type { UpstreamStats } from '../health/upstream-stats.js'
import type { UpstreamHealth } from '../health/upstream-health.js'
import type { HealthRegistry } from '../health/health-registry.js'
import type { DeliveryRegistry, RouteDelivery } from '../delivery/route-delivery.js'
import type { OutcomeSink } from '../views/ports.js'
import type { RouteView, RouteViews } from '../views/route-view.js'
import { UpstreamRecorder } from '../health/recorder.js'
import { Balancer, type Pickable } from './balancer.js'
import { poolKey, type PoolRegistry } from './pools.js'

export class RuntimeUpstream implements Pickable {
  readonly config: UpstreamConfig
  readonly name: string
  readonly weight: number
  readonly pool: Dispatcher
  readonly stats: UpstreamStats
  readonly health: UpstreamHealth
  /** Where attempts report their outcome. */
  readonly sink: OutcomeSink
  /**
   * The name attempts give undici for an https:// upstream, one per
   * upstream: undici drops its connection whenever a request's name differs
   * (it would take it from each client's Host). The connector sends the
   * configured SNI (core/upstream-connector.ts). Undefined for http://.
   */
  readonly servername: string | undefined

  constructor (config: UpstreamConfig, pool: Dispatcher, stats: UpstreamStats, health: UpstreamHealth) {
    this.config = config
    this.name = config.name
    this.weight = config.weight
    this.pool = pool
    this.stats = stats
    this.health = health
    this.sink = new UpstreamRecorder(stats, health)
    this.servername = config.tls === null ? undefined : (config.tls.servername ?? 'no-sni')
  }

  get available (): boolean { return this.health.available }
}


export class RuntimeRoute {
  readonly config: RouteConfig
  readonly upstreams: readonly RuntimeUpstream[]
  /** Upstreams by priority level, lowest first. */
  readonly levels: ReadonlyArray<readonly RuntimeUpstream[]>
  /** Every upstream above the primary level (what a shift moves traffic to). */
  readonly backups: readonly RuntimeUpstream[]
  readonly #balancers: ReadonlyArray<Balancer<RuntimeUpstream>>
  readonly #panic: Balancer<{ weight: number, available: true, u: RuntimeUpstream }>
  /** Budget, idempotency store, counters: kept across reloads. */
  readonly delivery: RouteDelivery
  /** Backup share and hedge delay, written by the control plane. */
  readonly view: RouteView
  /** The route's admission gate (kept across reloads); null without an admission block. */
  readonly admission: AdmissionGate | null
  /** The route's rate limits (buckets kept across reloads); null without any. */
  readonly rateLimits: RouteRateLimits | null
  /** Each tenant's share of the route (bulkheads.perTenant; kept across reloads); null without one. */
  readonly tenantCap: TenantCap | null
  /** Smooth split accumulator: exactly `share` of picks go to the backups, evenly spread. */
  #acc = 0

  constructor (config: RouteConfig, upstreams: readonly RuntimeUpstream[], delivery: RouteDelivery, view: RouteView, admission: AdmissionGate | null = null, rateLimits: RouteRateLimits | null = null, tenantCap: TenantCap | null = null) {
    this.config = config
    this.upstreams = upstreams
    this.delivery = delivery
    this.view = view
    this.admission = admission
    this.rateLimits = rateLimits
    this.tenantCap = tenantCap
    const byLevel = new Map<number, RuntimeUpstream[]>()
    for (const u of upstreams) byLevel.set(u.config.priority, [...(byLevel.get(u.config.priority) ?? []), u])
    this.levels = [...byLevel.entries()].sort((a, b) => a[0] - b[0]).map(e => e[1])
    this.backups = this.levels.slice(1).flat()
    this.#balancers = this.levels.map(level => new Balancer([level]))
    this.#panic = new Balancer([upstreams.map(u => ({ weight: u.weight, available: true as const, u }))])
  }

  /**
   * The upstream for the next request: the primaries, except for the share
   * moved to the backups (shift, or spill when primaries are missing);
   * failover to the next level with an available upstream; panic mode if
   * configured; null when nothing can take it.
   */
  pick (): RuntimeUpstream | null {
    const share = this.levels.length > 1 ? this.effectiveBackupShare() : 0
    if (share > 0) {
      this.#acc += share
      if (this.#acc >= 1 - 1e-9) {
        this.#acc -= 1
        const backup = this.#pickFrom(1)
        if (backup !== null) return backup
      }
    }
    const u = this.#pickFrom(0)
    if (u !== null || !this.config.failover.panic) return u
    return this.#panic.pick()?.u ?? null
  }

  #pickFrom (level: number): RuntimeUpstream | null {
    for (let i = level; i < this.#balancers.length; i++) {
      const u = (this.#balancers[i] as Balancer<RuntimeUpstream>).pick()
      if (u !== null) return u
    }
    return null
  }

  /** Shift share, or the overprovisioning spill when part of the primaries is out, whichever is larger. */
  effectiveBackupShare (): number {
    const factor = this.config.failover.overprovisioning
    if (factor === null) return this.view.backupShare
    let total = 0
    let up = 0
    for (const u of this.levels[0] as readonly RuntimeUpstream[]) {
      total += u.weight
      if (u.available) up += u.weight
    }
    const spill = total === 0 ? 1 : 1 - Math.min(1, (up / total) * factor)
    return Math.max(this.view.backupShare, spill)
  }
}

export interface Runtime {
  readonly snapshot: PolicySnapshot
  readonly routes: readonly RuntimeRoute[]
  /** 1 for the policy loaded at start, +1 per successful reload. */
  readonly generation: number
  /** Wall-clock ms when this snapshot went live. */
  readonly loadedAt: number
  /** The gateway-wide overload gate while the policy has an overload block (kept across reloads), else null. */
  readonly overload: OverloadGate | null
}

export interface RuntimeDeps {
  readonly pools: PoolRegistry
  readonly stats: StatsRegistry
  readonly health: HealthRegistry
  readonly delivery: DeliveryRegistry
  readonly views: RouteViews
  readonly admission: AdmissionRegistry
  readonly overload: OverloadGate
  readonly rateLimits: RateLimitRegistry
}

export function buildRuntime (snapshot: PolicySnapshot, deps: RuntimeDeps, generation: number, loadedAt: number): Runtime {
  const routes = snapshot.routes.map(route => new RuntimeRoute(route, route.upstreams.map(u => {
    const stats = deps.stats.get(route.name, u.name)
    stats.useSignal(route.shift === null ? null : route.shift.windowMs)
    const health = deps.health.get(route.name, u.name)
    deps.health.useBreaker(health, route.breaker)
    return new RuntimeUpstream(u, deps.pools.get(u.origin, route.timeouts.connectMs, u.tls, u.http2), stats, health)
  }), deps.delivery.get(route.name, route.retry, route.idempotency), deps.views.get(route.name), deps.admission.get(route.name, route.admission), deps.rateLimits.get(route.name, route.rateLimits), deps.admission.tenantCap(route.name, route.tenantCap)))
  deps.overload.configure(snapshot.overload)
  return Object.freeze({ snapshot, routes, generation, loadedAt, overload: snapshot.overload === null ? null : deps.overload })
}

/** Pool and stats keys a runtime uses, for releasing the rest after a swap. */
export function runtimeKeys (rt: Runtime): { pools: Set<string>, stats: Set<string> } {
  const pools = new Set<string>()
  const stats = new Set<string>()
  for (const r of rt.routes) {
    for (const u of r.upstreams) {
      pools.add(poolKey(u.config.origin, r.config.timeouts.connectMs, u.config.tls, u.config.http2))
      stats.add(u.config.key)
    }
  }
  return { pools, stats }
}

/** Seconds until the first upstream of the route may take traffic again (at least 1), for Retry-After. */
export function retryAfterSeconds (route: RuntimeRoute, now: number): number {
  let best = Infinity
  for (const u of route.upstreams) {
    if (u.weight <= 0) continue
    const ms = u.health.retryAfterMs(now)
    if (ms !== null && ms < best) best = ms
  }
  return best === Infinity ? 1 : Math.max(1, Math.ceil(best / 1000))
}
