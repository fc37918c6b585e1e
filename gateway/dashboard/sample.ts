/**
 * One dashboard sample, derived from two /status documents a sampling
 * interval apart (so it works the same for one process and for `--workers`,
 * whose primary sums its workers' documents): per route the traffic split
 * (attempts per second to primaries and backups), the primaries' latency
 * quantiles, request, error and shed rates, the shift's applied share,
 * phase, signal and thresholds, and each upstream's state.
 */
type Json = Record<string, any>

export interface SampleUpstream {
  readonly name: string
  readonly role: 'primary' | 'backup'
  readonly share: number
  readonly available: boolean
  readonly breaker: string | null
  readonly health: string | null
  readonly ejected: boolean
  readonly inflight: number
  /** Operator holds on it: "drain", "breaker:open", "breaker:closed". */
  readonly overrides: readonly string[]
}

export interface SampleRoute {
  readonly name: string
  readonly shift: { applied: number, phase: string, thresholdMs: number, recoverMs: number, quantile: string, signalMs: number | null, stalled: boolean } | null
  readonly traffic: { primaryPerS: number, backupPerS: number }
  readonly latencyMs: { p50: number, p95: number, p99: number } | null
  readonly rates: { requestsPerS: number, errorsPerS: number, shedPerS: number }
  readonly upstreams: readonly SampleUpstream[]
}

export interface Sample {
  /** Wall-clock ms. */
  readonly t: number
  readonly intervalMs: number
  readonly version: string
  readonly routes: readonly SampleRoute[]
  readonly overrides: readonly object[]
}

const num = (v: unknown): number => typeof v === 'number' && Number.isFinite(v) ? v : 0
const sum = (o: unknown): number => o !== null && typeof o === 'object' ? Object.values(o).reduce((n: number, v) => n + num(v), 0) : 0
const round = (v: number, d = 100): number => Math.round(v * d) / d

/** `prev` is the document one interval earlier (null for the first: rates 0). */
export function buildSample (now: Json, prev: Json | null, t: number, intervalMs: number): Sample {
  const secs = Math.max(0.001, intervalMs / 1000)
  const prevRoutes = new Map<string, Json>((prev?.routes ?? []).map((r: Json) => [r.name, r]))
  const overrides: Json[] = Array.isArray(now.overrides) ? now.overrides : []
  const routes = (now.routes ?? []).map((r: Json): SampleRoute => {
    const p = prevRoutes.get(r.name)
    const prevUp = new Map<string, Json>((p?.upstreams ?? []).map((u: Json) => [u.name, u]))
    const rate = (a: number, b: number | undefined): number => b === undefined ? 0 : round(Math.max(0, a - b) / secs)
    let primary = 0
    let backup = 0
    let worst: SampleRoute['latencyMs'] = null
    const upstreams = (r.upstreams ?? []).map((u: Json): SampleUpstream => {
      const before = prevUp.get(u.name)
      const perS = rate(sum(u.total), before === undefined ? undefined : sum(before.total))
      if (u.role === 'primary') {
        primary += perS
        const l = u.window?.latencyMs
        if (l != null && (worst === null || num(l.p99) > worst.p99)) worst = { p50: round(num(l.p50)), p95: round(num(l.p95)), p99: round(num(l.p99)) }
      } else backup += perS
      const held: string[] = []
      for (const o of overrides) {
        if (o.route !== r.name || o.upstream !== u.name) continue
        held.push(o.kind === 'breaker' ? `breaker:${String(o.state)}` : String(o.kind))
      }
      return {
        name: String(u.name),
        role: u.role === 'primary' ? 'primary' : 'backup',
        share: num(u.share),
        available: u.available === true,
        breaker: typeof u.breaker === 'string' ? u.breaker : null,
        health: typeof u.healthCheck === 'string' ? u.healthCheck : null,
        ejected: num(u.ejectedForMs) > 0,
        inflight: num(u.inflight),
        overrides: held
      }
    })
    const res = r.responses ?? {}
    const pres = p?.responses
    const requests = sum({ ...res, shed: 0 })
    const s = r.shift
    return {
      name: String(r.name),
      shift: s == null
        ? null
        : { applied: num(s.applied), phase: String(s.phase ?? 'idle'), thresholdMs: num(s.thresholdMs), recoverMs: num(s.recoverMs), quantile: String(s.quantile), signalMs: typeof s.lastSignalMs === 'number' ? round(s.lastSignalMs) : null, stalled: s.stalled === true },
      traffic: { primaryPerS: round(primary), backupPerS: round(backup) },
      latencyMs: worst,
      rates: {
        requestsPerS: rate(requests, pres === undefined ? undefined : sum({ ...pres, shed: 0 })),
        errorsPerS: rate(num(res['5xx']), pres === undefined ? undefined : num(pres['5xx'])),
        shedPerS: rate(num(res.shed), pres === undefined ? undefined : num(pres.shed))
      },
      upstreams
    }
  })
  return { t, intervalMs, version: String(now.policy?.version ?? ''), routes, overrides }
}
