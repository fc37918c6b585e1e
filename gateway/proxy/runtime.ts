/**
 * The data plane's live view of one policy snapshot: routes with their
 * balancer, and upstreams bound to their connection pool and stats. Built
 * aside on reload and swapped in as one reference.
 */
import type { Dispatcher } from 'undici'
import type { PolicySnapshot, RouteConfig, UpstreamConfig } from '../policy/snapshot.js'
import type { StatsRegistry } from '../health/stats-registry.js'
import type { UpstreamStats } from '../health/upstream-stats.js'
import { Balancer, type Pickable } from './balancer.js'
import { poolKey, type PoolRegistry } from './pools.js'

export class RuntimeUpstream implements Pickable {
  readonly config: UpstreamConfig
  readonly name: string
  readonly weight: number
  /** Written by the control plane (breakers, ejection); read per request. */
  available = true
  readonly pool: Dispatcher
  readonly stats: UpstreamStats

  constructor (config: UpstreamConfig, pool: Dispatcher, stats: UpstreamStats) {
    this.config = config
    this.name = config.name
    this.weight = config.weight
    this.pool = pool
    this.stats = stats
  }
}

export class RuntimeRoute {
  readonly config: RouteConfig
  readonly upstreams: readonly RuntimeUpstream[]
  readonly balancer: Balancer<RuntimeUpstream>

  constructor (config: RouteConfig, upstreams: readonly RuntimeUpstream[]) {
    this.config = config
    this.upstreams = upstreams
    const levels = new Map<number, RuntimeUpstream[]>()
    for (const u of upstreams) {
      const level = levels.get(u.config.priority) ?? []
      level.push(u)
      levels.set(u.config.priority, level)
    }
    this.balancer = new Balancer([...levels.entries()].sort((a, b) => a[0] - b[0]).map(e => e[1]))
  }
}

export interface Runtime {
  readonly snapshot: PolicySnapshot
  readonly routes: readonly RuntimeRoute[]
  /** 1 for the policy loaded at start, +1 per successful reload. */
  readonly generation: number
  /** Wall-clock ms when this snapshot went live. */
  readonly loadedAt: number
}

export function buildRuntime (snapshot: PolicySnapshot, pools: PoolRegistry, stats: StatsRegistry, generation: number, loadedAt: number): Runtime {
  const routes = snapshot.routes.map(route => new RuntimeRoute(route, route.upstreams.map(u =>
    new RuntimeUpstream(u, pools.get(u.origin, route.timeouts.connectMs), stats.get(route.name, u.name)))))
  return Object.freeze({ snapshot, routes, generation, loadedAt })
}

/** Pool and stats keys a runtime uses, for releasing the rest after a swap. */
export function runtimeKeys (rt: Runtime): { pools: Set<string>, stats: Set<string> } {
  const pools = new Set<string>()
  const stats = new Set<string>()
  for (const r of rt.routes) {
    for (const u of r.upstreams) {
      pools.add(poolKey(u.config.origin, r.config.timeouts.connectMs))
      stats.add(u.config.key)
    }
  }
  return { pools, stats }
}
