/**
 * Compiles the per-route resilience blocks to numbers with defaults filled
 * in, and checks what the schema cannot: recover.threshold below threshold,
 * max + minShare within 100%, breaker maxOpenFor not below openFor.
 */
import { pct, type DurationFn } from './compile-kit.js'
import type { RouteDoc } from './schema.js'
import type { PolicySource } from './source.js'
import type { PolicyIssue } from './issues.js'
import type { BreakerConfig, FailoverConfig, HealthCheckConfig, OutlierConfig, ShiftConfig } from './snapshot.js'

type Path = Array<string | number>

const DEFAULT_FAIL_ON = ['connect', 'timeout', 'reset', 'protocol', '5xx']

export interface ResilienceConfig {
  breaker: BreakerConfig | null
  failover: FailoverConfig
  shift: ShiftConfig | null
  outlier: OutlierConfig | null
  healthCheck: HealthCheckConfig | null
}

export function compileResilience (r: RouteDoc, index: number, source: PolicySource, issues: PolicyIssue[], duration: DurationFn): ResilienceConfig {
  const at = (...p: Path): Path => ['routes', index, ...p]
  let breaker: BreakerConfig | null = null
  if (r.breaker !== undefined) {
    const b = r.breaker
    const failOn = b.failOn ?? DEFAULT_FAIL_ON
    breaker = {
      failureRate: pct(b.failureRate, 0.5),
      windowMs: duration(b.window, at('breaker', 'window'), 10_000),
      minRequests: b.minRequests ?? 20,
      consecutiveFailures: b.consecutiveFailures ?? 5,
      openForMs: duration(b.openFor, at('breaker', 'openFor'), 5000),
      maxOpenForMs: duration(b.maxOpenFor, at('breaker', 'maxOpenFor'), 60_000),
      failOn: new Set(failOn.filter((x): x is string => typeof x === 'string')),
      failOnStatus: new Set(failOn.filter((x): x is number => typeof x === 'number'))
    }
    if (breaker.maxOpenForMs < breaker.openForMs) issues.push(source.issue(at('breaker', 'maxOpenFor'), `maxOpenFor (${breaker.maxOpenForMs}ms) is shorter than openFor (${breaker.openForMs}ms); make it at least openFor`))
  }

  const failover: FailoverConfig = { overprovisioning: r.failover?.overprovisioning ?? null, panic: r.failover?.panic ?? false }

  let shift: ShiftConfig | null = null
  if (r.shift !== undefined) {
    const s = r.shift
    const thresholdMs = duration(s.threshold, at('shift', 'threshold'), 1000)
    const probeDoc = s.probe === false ? null : (s.probe ?? {})
    const minShare = pct(s.minShare, probeDoc === null ? 0.05 : 0)
    const max = pct(s.max, 1 - minShare)
    const rec = s.recover ?? {}
    const forMs = duration(rec.for, at('shift', 'recover', 'for'), 3000)
    shift = {
      enforce: s.enforce ?? true,
      quantile: s.signal?.quantile ?? 'p95',
      windowMs: duration(s.signal?.window, at('shift', 'signal', 'window'), 2000),
      minSamples: s.signal?.minSamples ?? 10,
      thresholdMs,
      forMs: duration(s.for, at('shift', 'for'), 100),
      step: pct(s.step, 0.25),
      intervalMs: duration(s.interval, at('shift', 'interval'), 250),
      max,
      minShare,
      cooldownMs: duration(s.cooldown, at('shift', 'cooldown'), 10_000),
      recover: {
        thresholdMs: duration(rec.threshold, at('shift', 'recover', 'threshold'), Math.round(thresholdMs / 2)),
        forMs,
        maxForMs: duration(rec.maxFor, at('shift', 'recover', 'maxFor'), Math.max(60_000, forMs)),
        step: pct(rec.step, 0.2),
        intervalMs: duration(rec.interval, at('shift', 'recover', 'interval'), 1000),
        curve: rec.curve ?? 'linear'
      },
      errors: s.errors === false ? null : errorsConfig(s.errors ?? {}),
      stall: s.stall === false
        ? null
        : { factor: s.stall?.factor ?? 2, minStuck: s.stall?.minStuck ?? 5 },
      probe: probeDoc === null
        ? null
        : {
            path: probeDoc.path ?? r.healthCheck?.path ?? '/',
            intervalMs: duration(probeDoc.interval, at('shift', 'probe', 'interval'), 500),
            timeoutMs: duration(probeDoc.timeout, at('shift', 'probe', 'timeout'), 5000)
          }
    }
    if (shift.errors !== null && shift.errors.recoverRate >= shift.errors.rate) {
      issues.push(source.issue(at('shift', 'errors', 'recoverRate'), 'errors.recoverRate must be below errors.rate, or the route would flap; lower it'))
    }
    if (shift.recover.thresholdMs >= thresholdMs) {
      issues.push(source.issue(at('shift', 'recover', 'threshold'), `recover.threshold (${shift.recover.thresholdMs}ms) must be below threshold (${thresholdMs}ms), or the route would flap; lower it`))
    }
    if (max + minShare > 1.000001) {
      issues.push(source.issue(at('shift', 'max'), `max (${Math.round(max * 100)}%) plus minShare (${Math.round(minShare * 100)}%) exceed 100%; the primaries must keep minShare`))
    }
    if (shift.step <= 0) issues.push(source.issue(at('shift', 'step'), 'step must be more than 0%'))
    if (shift.recover.step <= 0) issues.push(source.issue(at('shift', 'recover', 'step'), 'recover.step must be more than 0%'))
    if (shift.recover.maxForMs < forMs) issues.push(source.issue(at('shift', 'recover', 'maxFor'), `recover.maxFor must be at least recover.for (${forMs}ms)`))
    if (!r.upstreams.some(u => u.role === 'backup' || (u.priority ?? 0) > 0)) {
      issues.push(source.issue(at('shift'), 'shift needs at least one backup upstream (role: backup or priority > 0) to move traffic to'))
    }
  }

  let outlier: OutlierConfig | null = null
  if (r.outlier !== undefined) {
    const o = r.outlier
    outlier = {
      consecutiveFailures: o.consecutiveFailures ?? 5,
      baseEjectionMs: duration(o.baseEjectionTime, at('outlier', 'baseEjectionTime'), 5000),
      maxEjectionMs: duration(o.maxEjectionTime, at('outlier', 'maxEjectionTime'), 60_000),
      maxEjectionPercent: pct(o.maxEjectionPercent, 0.5)
    }
  }

  let healthCheck: HealthCheckConfig | null = null
  if (r.healthCheck !== undefined) {
    const h = r.healthCheck
    healthCheck = {
      path: h.path,
      intervalMs: duration(h.interval, at('healthCheck', 'interval'), 5000),
      timeoutMs: duration(h.timeout, at('healthCheck', 'timeout'), 1000),
      healthyThreshold: h.healthyThreshold ?? 2,
      unhealthyThreshold: h.unhealthyThreshold ?? 3
    }
  }
  return { breaker, failover, shift, outlier, healthCheck }
}

function errorsConfig (e: { rate?: string, recoverRate?: string, minSamples?: number }): NonNullable<ShiftConfig['errors']> {
  const rate = pct(e.rate, 0.2)
  return { rate, recoverRate: pct(e.recoverRate, rate / 2), minSamples: e.minSamples ?? 20 }
}
