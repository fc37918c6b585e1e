/**
 * Compiles the delivery blocks (retry, idempotency, hedge) with defaults,
 * and checks what the schema cannot (hedging only makes sense with a second
 * upstream; backoff max not below base).
 */
import { parseDuration, MAX_DURATION, MAX_DURATION_MS } from '../core/units.js'
import { pct, size, type DurationFn } from './compile-kit.js'
import type { RouteDoc } from './schema.js'
import type { PolicySource } from './source.js'
import type { PolicyIssue } from './issues.js'
import type { DerivedKeyConfig, HedgeConfig, IdempotencyConfig, KeyPart, RetryConfig } from './snapshot.js'

const DEFAULT_ON = ['connect-failure', 'reset', '502', '503', '504']


export function compileDelivery (r: RouteDoc, index: number, source: PolicySource, issues: PolicyIssue[], duration: DurationFn):
{ retry: RetryConfig | null, idempotency: IdempotencyConfig | null, hedge: HedgeConfig | null } {
  const at = (...p: Array<string | number>): Array<string | number> => ['routes', index, ...p]
  let retry: RetryConfig | null = null
  if (r.retry !== undefined) {
    const x = r.retry
    retry = {
      attempts: x.attempts ?? 2,
      on: new Set<string>((x.on ?? DEFAULT_ON).map(String)),
      backoffBaseMs: duration(x.backoff?.base, at('retry', 'backoff', 'base'), 25),
      backoffMaxMs: duration(x.backoff?.max, at('retry', 'backoff', 'max'), 250),
      bufferBodyBytes: size(x.bufferBody, 64 * 1024),
      budgetRatio: pct(x.budget?.ratio, 0.2),
      budgetMinPerSecond: x.budget?.minPerSecond ?? 3,
      budgetWindowMs: duration(x.budget?.window, at('retry', 'budget', 'window'), 10_000)
    }
    if (retry.backoffMaxMs < retry.backoffBaseMs) issues.push(source.issue(at('retry', 'backoff', 'max'), 'backoff.max must be at least backoff.base'))
  }
  let idempotency: IdempotencyConfig | null = null
  if (r.idempotency !== undefined) {
    const x = r.idempotency
    idempotency = {
      header: (x.header ?? 'Idempotency-Key').toLowerCase(),
      ttlMs: duration(x.ttl, at('idempotency', 'ttl'), 24 * 3_600_000),
      maxBodyBytes: size(x.maxBodySize, 1024 * 1024),
      waitForMs: duration(x.waitFor, at('idempotency', 'waitFor'), 10_000),
      onUnknownOutcome: x.onUnknownOutcome ?? 'conflict',
      generate: x.generate ?? false,
      upstreamDedupes: x.upstreamDedupes ?? false,
      maxKeys: x.maxKeys ?? 100_000,
      storeUnavailable: x.storeUnavailable ?? 'reject',
      keyFrom: compileKeyFrom(x, (i, message) => issues.push(source.issue(at('idempotency', 'keyFrom', i), message)))
    }
    if (x.keyFrom === undefined) {
      for (const k of ['keyMissing', 'keyMethods'] as const) {
        if (x[k] !== undefined) issues.push(source.issue(at('idempotency', k), `${k} applies to derived keys only: add idempotency.keyFrom, or remove ${k}`))
      }
    } else {
      if (x.generate === true) issues.push(source.issue(at('idempotency', 'generate'), 'generate makes a random key for each request, which never repeats; with keyFrom the key is derived from the request: remove one of them'))
      if (x.upstreamDedupes === true) issues.push(source.issue(at('idempotency', 'upstreamDedupes'), 'a keyFrom key stays in the gateway, so the upstream cannot dedupe by it: remove upstreamDedupes, or use client keys'))
    }
  }
  let hedge: HedgeConfig | null = null
  if (r.hedge !== undefined) {
    const d = r.hedge.delay
    const quantile = d === 'p90' || d === 'p95' || d === 'p99' ? d : null
    let fixed = 0
    if (quantile === null && typeof d === 'string') {
      try { fixed = parseDuration(d) } catch { fixed = 0 }
      if (!(fixed <= MAX_DURATION_MS)) {
        issues.push(source.issue(at('hedge', 'delay'), `${JSON.stringify(d)} is too long: a duration may be at most ${MAX_DURATION} (${MAX_DURATION_MS} ms); write a shorter one, e.g. 50ms`))
        fixed = 0
      }
    }
    hedge = { quantile, fixedDelayMs: fixed, minDelayMs: duration(r.hedge.minDelay, at('hedge', 'minDelay'), 10) }
    if (r.upstreams.length < 2) issues.push(source.issue(at('hedge'), 'hedging needs a second upstream to send the hedge to'))
  }
  return { retry, idempotency, hedge }
}

/** keyFrom parts with header names lower-cased and JSON Pointers split (RFC 6901 unescaping) once, at load; a part with other than one source is reported. */
function compileKeyFrom (x: NonNullable<RouteDoc['idempotency']>, report: (index: number, message: string) => void): DerivedKeyConfig | null {
  if (!Array.isArray(x.keyFrom)) return null
  const parts: KeyPart[] = []
  for (const [i, p] of x.keyFrom.entries()) {
    if (p === 'method' || p === 'path') {
      parts.push({ from: p })
      continue
    }
    if (typeof p !== 'object' || p === null) continue
    const sources = (['header', 'query', 'body'] as const).filter(k => p[k] !== undefined)
    if (sources.length !== 1) report(i, sources.length === 0 ? 'a keyFrom part needs where to read its value: header, query or body' : `a keyFrom part reads one value, from one place: split ${sources.join(' and ')} into parts of their own`)
    if (typeof p.header === 'string') parts.push({ from: 'header', name: p.header.toLowerCase(), normalize: p.normalize ?? [] })
    else if (typeof p.query === 'string') parts.push({ from: 'query', name: p.query, normalize: p.normalize ?? [] })
    else if (typeof p.body === 'string') {
      const tokens = p.body.split('/').slice(1).map(t => t.replaceAll('~1', '/').replaceAll('~0', '~'))
      parts.push({ from: 'body', pointer: p.body, tokens, normalize: p.normalize ?? [] })
    }
  }
  return {
    parts,
    needsBody: parts.some(p => p.from === 'body'),
    onMissing: x.keyMissing ?? 'forward',
    methods: new Set(x.keyMethods ?? ['POST', 'PATCH'])
  }
}
