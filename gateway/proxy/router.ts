/**
 * First-match routing over the snapshot's routes (declared order, like
 * Envoy). Only the cheap checks run per request: a string prefix, and the
 * host/method/header checks of routes that ask for them, and a tenant
 * bulkhead's header lookup in its set of tenants.
 */
import type { RouteConfig } from '../policy/snapshot.js'
import type { RuntimeRoute } from './runtime.js'

/** "Example.COM:8080" → "example.com"; "[::1]:80" → "[::1]". */
export function normalizeHost (host: string): string {
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : host.lastIndexOf(':')
  return (end > 0 ? host.slice(0, end) : host).toLowerCase()
}

export function routeMatches (route: RouteConfig, method: string, path: string, host: string, raw: readonly string[]): boolean {
  if (!path.startsWith(route.pathPrefix)) return false
  if (route.methods !== null && !route.methods.has(method)) return false
  if (route.host !== null) {
    const h = normalizeHost(host)
    if ('exact' in route.host ? h !== route.host.exact : !h.endsWith(route.host.suffix)) return false
  }
  if (route.headers !== null) {
    for (const [name, value] of route.headers) {
      if (!hasHeader(raw, name, value)) return false
    }
  }
  if (route.tenant !== null && !hasTenant(raw, route.tenant.header, route.tenant.values)) return false
  return true
}

/** Any field of the tenant header with one of the pool's values (a request naming a pool's tenant anywhere is held in the pool). */
function hasTenant (raw: readonly string[], name: string, values: ReadonlySet<string>): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).length === name.length && (raw[i] as string).toLowerCase() === name && values.has(raw[i + 1] as string)) return true
  }
  return false
}

function hasHeader (raw: readonly string[], name: string, value: string): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).length === name.length && (raw[i] as string).toLowerCase() === name && raw[i + 1] === value) return true
  }
  return false
}

/** The first route (file order) that takes the request, or null. */
export function findRoute (routes: readonly RuntimeRoute[], method: string, path: string, host: string, raw: readonly string[]): RuntimeRoute | null {
  for (const r of routes) {
    if (routeMatches(r.config, method, path, host, raw)) return r
  }
  return null
}

/** `target` without the route's prefix, still starting with "/". */
export function stripPrefix (target: string, prefix: string): string {
  const rest = target.slice(prefix.length)
  return rest.charCodeAt(0) === 47 ? rest : '/' + rest
}

/** The path of a target for a problem detail (no query, at most 200 characters). */
export function pathOnly (target: string): string {
  const q = target.indexOf('?')
  const p = q === -1 ? target : target.slice(0, q)
  return p.length > 200 ? p.slice(0, 200) + '…' : p
}
