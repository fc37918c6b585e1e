/**
 * Tenant bulkheads (schema-bulkhead.ts): each pool becomes a route of its
 * own, ROUTE.POOL, matched just before its route with one more condition —
 * the tenant header names one of the pool's tenants. The pool's document is
 * the route's with the pool's own upstreams, admission, rate limits and
 * priority in place, so everything else (timeouts, retries, breaker, shift,
 * health checks) is compiled by the same code as any route, with its own
 * state. Issues about the pool's own settings point at the pool's lines.
 */
import type { RouteDoc } from './schema.js'
import type { PolicySource } from './source.js'
import type { PolicyIssue } from './issues.js'
import type { TenantCapConfig, TenantMatch } from './snapshot.js'

type Path = ReadonlyArray<string | number>

export interface PoolRoute {
  /** The route's document with the pool's own settings. */
  readonly doc: RouteDoc
  /** Maps paths of the pool's own settings to where they are written. */
  readonly source: PolicySource
  readonly namePath: Path
  readonly tenant: TenantMatch
}

const OWN = ['upstreams', 'admission', 'rateLimits', 'priority'] as const

/** bulkheads.perTenant, for the route and each of its pools; says so when the block has neither pools nor perTenant. */
export function tenantCapOf (r: RouteDoc, index: number, source: PolicySource, issues: PolicyIssue[]): TenantCapConfig | null {
  const b = r.bulkheads
  if (b === undefined || typeof b.header !== 'string') return null
  if (b.pools === undefined && b.perTenant === undefined) issues.push(source.issue(['routes', index, 'bulkheads'], 'a bulkheads block needs pools (tenants with a pool of their own), perTenant (a share for every tenant), or both', true))
  return b.perTenant === undefined ? null : { header: b.header.toLowerCase(), maxConcurrent: b.perTenant.maxConcurrent }
}

export function bulkheadPools (r: RouteDoc, index: number, source: PolicySource, issues: PolicyIssue[]): PoolRoute[] {
  const b = r.bulkheads
  // Compile also sees documents that failed the schema; the schema has said why.
  if (b === undefined || typeof b.header !== 'string' || !Array.isArray(b.pools)) return []
  const owner = new Map<string, string>()
  const names = new Set<string>()
  const pools: PoolRoute[] = []
  b.pools.forEach((p, j) => {
    const base = ['routes', index, 'bulkheads', 'pools', j] as const
    if (names.has(p.name)) issues.push(source.issue([...base, 'name'], `bulkhead pool name "${p.name}" is already used in this route; names must be unique`))
    names.add(p.name)
    const tenants = Array.isArray(p.tenants) ? p.tenants : []
    tenants.forEach((t, k) => {
      const first = owner.get(t)
      if (first !== undefined && first !== p.name) issues.push(source.issue([...base, 'tenants', k], `tenant "${t}" is already in pool "${first}"; a tenant may be in one pool only`))
      else owner.set(t, p.name)
    })
    const own = new Set<string>(OWN.filter(k => p[k] !== undefined))
    const map = (path: Path): Path =>
      path[0] === 'routes' && path[1] === index && typeof path[2] === 'string' && own.has(path[2]) ? [...base, ...path.slice(2)] : path
    const { bulkheads: _, ...route } = r
    pools.push({
      doc: {
        ...route,
        name: `${r.name}.${p.name}`,
        upstreams: p.upstreams ?? r.upstreams,
        admission: p.admission ?? r.admission,
        rateLimits: p.rateLimits ?? r.rateLimits,
        priority: p.priority ?? r.priority
      },
      source: {
        ...source,
        locate: (path, preferKey) => source.locate(map(path), preferKey),
        issue: (path, message, preferKey) => source.issue(map(path), message, preferKey)
      },
      namePath: [...base, 'name'],
      tenant: { header: b.header.toLowerCase(), values: new Set(tenants), route: r.name, pool: p.name }
    })
  })
  return pools
}

/**
 * The pool's issues that the route itself does not already have (settings
 * it shares with the route are reported once, for the route), each saying
 * which pool it is about.
 */
export function poolIssues (pool: PoolRoute, found: readonly PolicyIssue[], routeIssues: readonly PolicyIssue[]): PolicyIssue[] {
  const seen = new Set(routeIssues.map(i => `${i.path}\n${i.message}`))
  return found.filter(i => !seen.has(`${i.path}\n${i.message}`))
    .map(i => ({ ...i, message: `bulkhead pool "${pool.tenant.pool}": ${i.message}` }))
}
