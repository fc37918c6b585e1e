/**
 * The /status document: policy identity, routes, upstreams with their
 * configured weight and current share, counters and latency quantiles.
 * Upstreams are shown by origin only (no credentials, no paths).
 */
import type { Runtime, RuntimeRoute } from '../proxy/runtime.js'
import type { ReloadRecord } from './reload.js'

export function routeShares (route: RuntimeRoute): Map<string, number> {
  const shares = new Map<string, number>()
  let activePriority: number | null = null
  let total = 0
  for (const u of route.upstreams) {
    if (u.weight <= 0 || !u.available) continue
    if (activePriority === null) activePriority = u.config.priority
    if (u.config.priority === activePriority) total += u.weight
  }
  for (const u of route.upstreams) {
    const active = u.available && u.weight > 0 && u.config.priority === activePriority
    shares.set(u.name, active ? Math.round((u.weight / total) * 10_000) / 10_000 : 0)
  }
  return shares
}

export function buildStatus (rt: Runtime, lastReload: ReloadRecord | null, startedAt: number, now: number): object {
  const s = rt.snapshot
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
        timeoutsMs: c.timeouts,
        upstreams: r.upstreams.map(u => {
          const v = u.stats.view()
          return {
            name: u.name,
            origin: u.config.origin,
            priority: u.config.priority,
            role: u.config.priority === 0 ? 'primary' : 'backup',
            weight: u.weight,
            available: u.available,
            share: shares.get(u.name) ?? 0,
            inflight: v.inflight,
            oldestInflightMs: v.oldestInflightMs,
            window: v.window,
            total: v.total
          }
        })
      }
    })
  }
}
