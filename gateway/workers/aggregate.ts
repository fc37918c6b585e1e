/**
 * /status for a process with workers: the policy and routes as the first
 * worker sees them (shares are the same on every worker: they are merged
 * through the primary), with the request counters and upstream totals
 * summed over all workers, and one line per worker.
 */
type Json = Record<string, any>

export function aggregateStatus (statuses: readonly object[], configured: number): object {
  const all = statuses.filter((s): s is Json => s !== null && typeof s === 'object')
  const first = all[0] ?? {}
  const routes = (first.routes ?? []).map((r: Json, i: number) => {
    const delivery: Json = { ...r.delivery }
    const responses: Json = { ...r.responses }
    const upstreams = (r.upstreams ?? []).map((u: Json) => ({ ...u, total: { ...u.total }, inflight: 0 }))
    for (const s of all.slice(1)) {
      const other = s.routes?.[i]
      if (other === undefined) continue
      for (const [k, v] of Object.entries(other.delivery ?? {})) if (typeof v === 'number' && typeof delivery[k] === 'number' && k !== 'hedgeDelayMs') delivery[k] += v
      for (const [k, v] of Object.entries(other.responses ?? {})) if (typeof v === 'number' && typeof responses[k] === 'number') responses[k] += v
    }
    for (const [j, u] of upstreams.entries()) {
      for (const s of all) {
        const ou = s.routes?.[i]?.upstreams?.[j]
        if (ou === undefined) continue
        u.inflight += Number(ou.inflight ?? 0)
        if (s === first) continue
        for (const [k, v] of Object.entries(ou.total ?? {})) if (typeof v === 'number') u.total[k] = (u.total[k] ?? 0) + v
      }
    }
    return { ...r, delivery, responses, upstreams }
  })
  return {
    gateway: { ...first.gateway, pid: process.pid, workers: { configured, running: all.length } },
    policy: first.policy,
    overrides: first.overrides ?? [],
    /** Per worker (each process has its own overload gate): the first worker's. */
    overload: first.overload ?? null,
    store: { ...first.store, heldBy: first.store?.kind === 'memory' ? 'primary process' : 'redis' },
    routes,
    workers: all.map(s => ({ pid: s.gateway?.pid, uptimeSeconds: s.gateway?.uptimeSeconds, requests: (s.routes ?? []).reduce((n: number, r: Json) => n + Number(r.delivery?.requests ?? 0) + Number(r.delivery?.replays ?? 0), 0), listeners: s.listeners }))
  }
}
