/** Compiles the per-route admission block and priority, and the gateway-wide overload block, with their defaults. */
import { pct, type DurationFn } from './compile-kit.js'
import type { PolicyDoc, RouteDoc } from './schema.js'
import type { OverloadConfig, RouteConfig } from './snapshot.js'
import type { PolicySource } from './source.js'
import type { PolicyIssue } from './issues.js'

export const DEFAULT_SHED_AT = { low: 0.5, normal: 0.75, high: 0.9 } as const

export const DEFAULT_QUEUE_TIMEOUT_MS = 1000

export function compileAdmission (r: RouteDoc, index: number, duration: DurationFn, source: PolicySource, issues: PolicyIssue[]): Pick<RouteConfig, 'admission' | 'priority' | 'rateLimits'> {
  const a = r.admission
  const priority = r.priority ?? 'normal'
  const rateLimits = compileRateLimits(r, index, duration, source, issues)
  if (a === undefined) return { admission: null, priority, rateLimits }
  return {
    priority,
    rateLimits,
    admission: {
      maxConcurrent: a.maxConcurrent,
      queue: a.queue ?? a.maxConcurrent,
      queueTimeoutMs: duration(a.queueTimeout, ['routes', index, 'admission', 'queueTimeout'], DEFAULT_QUEUE_TIMEOUT_MS),
      adaptive: a.adaptive === undefined ? null : { minLimit: Math.min(a.maxConcurrent, a.adaptive.minLimit ?? 4), tolerance: a.adaptive.tolerance ?? 2 }
    }
  }
}

export const DEFAULT_OVERLOAD_QUEUE_TIMEOUT_MS = 250

export function compileOverload (doc: PolicyDoc['overload'], source: PolicySource, issues: PolicyIssue[], duration: DurationFn): OverloadConfig | null {
  if (doc === undefined) return null
  const s = doc.shedAt
  const shedAt = { low: pct(s?.low, DEFAULT_SHED_AT.low), normal: pct(s?.normal, DEFAULT_SHED_AT.normal), high: pct(s?.high, DEFAULT_SHED_AT.high), critical: 1 }
  const order = ['low', 'normal', 'high'] as const
  for (const [i, p] of order.entries()) {
    const up = i + 1 < order.length ? order[i + 1] as typeof order[number] : null
    if (shedAt[p] > 1) issues.push(source.issue(['overload', 'shedAt', p], `${Math.round(shedAt[p] * 100)}% is more than maxConcurrent itself; use at most 100%`))
    else if (up !== null && shedAt[p] > shedAt[up]) issues.push(source.issue(['overload', 'shedAt', p], `${p} (${Math.round(shedAt[p] * 100)}%) would be shed after ${up} (${Math.round(shedAt[up] * 100)}%); a lower priority must be shed first, at a smaller share`))
  }
  return { maxConcurrent: doc.maxConcurrent, shedAt, queue: doc.queue ?? doc.maxConcurrent, queueTimeoutMs: duration(doc.queueTimeout, ['overload', 'queueTimeout'], DEFAULT_OVERLOAD_QUEUE_TIMEOUT_MS) }
}

function compileRateLimits (r: RouteDoc, index: number, duration: DurationFn, source: PolicySource, issues: PolicyIssue[]): RouteConfig['rateLimits'] {
  const list = r.rateLimits ?? []
  list.forEach((l, j) => {
    const first = list.findIndex(x => x.name === l.name)
    if (first !== j) issues.push(source.issue(['routes', index, 'rateLimits', j, 'name'], `rate limit name "${l.name}" is already used in this route; names must be unique`))
  })
  return list.map((l, j) => ({
    name: l.name,
    key: l.key === 'route' || l.key === 'ip' ? { kind: l.key } : { kind: 'header' as const, header: l.key.slice('header:'.length).toLowerCase() },
    limit: l.limit,
    windowMs: duration(l.window, ['routes', index, 'rateLimits', j, 'window'], 1000),
    scope: l.scope ?? 'global',
    storeDown: l.storeDown ?? 'local'
  }))
}
