/**
 * The drills' measurements, as pure functions: in go arrays of upstream
 * arrivals (which upstream received a drill request, when, with which
 * Idempotency-Key), client results (when each request was sent, its status
 * and latency) and gateway events, all with times in ms relative to the
 * moment the fault was injected; out come plain numbers. Nothing here reads a
 * clock, a socket or a global, so every figure can be unit-tested with
 * hand-made arrays. Buckets are half-open `[start, end)` intervals aligned to
 * the `from` time they are asked for; a time reported for a bucket is its END
 * (the moment by which the condition was seen to hold), so it is never
 * flattering by up to one bucket.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { RequestResult } from '../open-loop.js'
import { isError, percentile } from '../s1-scenario.js'

/** Width of the arrival buckets the shift figures are read from. */
export const BUCKET_MS = 250

/** One drill request as an upstream received it. */
export interface Arrival {
  readonly upstream: string
  /** Arrival time (the upstream's `Date.now()`) minus the fault's, in ms. */
  readonly atMs: number
  /** The request's `Idempotency-Key`, when it had one. */
  readonly key?: string
  /** The client's schedule position (the drill's marker header). */
  readonly seq?: number
}

/** One client request (runOpenLoop's result), also on the fault clock. */
export interface ClientSample extends RequestResult {
  /** Intended send time minus the fault's, in ms. */
  readonly sentMs: number
}

/** A gateway event, on the fault clock. */
export interface TimedEvent {
  readonly seq: number
  readonly kind: string
  readonly atMs: number
  readonly enforced: boolean
  readonly before?: number | string
  readonly after?: number | string
}

/** What an upstream recorded (the subset of FaultUpstream.received used here). */
export interface ReceivedLike {
  readonly at: number
  readonly headers: IncomingHttpHeaders
}

/** Counts of one bucket. */
export interface Bucket {
  readonly startMs: number
  readonly endMs: number
  readonly total: number
  readonly byUpstream: Readonly<Record<string, number>>
}

const header = (h: IncomingHttpHeaders, name: string): string | undefined => {
  const v = h[name]
  return Array.isArray(v) ? v[0] : v
}

/**
 * The drill requests among what one upstream received: those carrying the
 * marker header (health checks, latency probes and the preflight do not), with
 * `at` moved onto the fault clock.
 */
export function toArrivals (upstream: string, received: readonly ReceivedLike[], faultWallMs: number, markerHeader: string): Arrival[] {
  const out: Arrival[] = []
  for (const r of received) {
    const marker = header(r.headers, markerHeader)
    if (marker === undefined) continue
    const key = header(r.headers, 'idempotency-key')
    const seq = Number(marker)
    out.push({ upstream, atMs: r.at - faultWallMs, ...(key === undefined ? {} : { key }), ...(Number.isInteger(seq) ? { seq } : {}) })
  }
  return out
}

/** Client results (times from the schedule start) moved onto the fault clock. */
export function toClientSamples (results: readonly RequestResult[], faultAfterStartMs: number): ClientSample[] {
  return results.map(r => ({ ...r, sentMs: r.intendedMs - faultAfterStartMs }))
}

/** Arrivals in `[fromMs, untilMs)` in consecutive buckets aligned to `fromMs`; a trailing partial bucket is dropped. */
export function bucketize (arrivals: readonly Arrival[], fromMs: number, untilMs: number, bucketMs = BUCKET_MS): Bucket[] {
  const n = Math.max(0, Math.floor((untilMs - fromMs) / bucketMs))
  const totals = new Array<number>(n).fill(0)
  const by: Array<Record<string, number>> = Array.from({ length: n }, () => ({}))
  for (const a of arrivals) {
    const i = Math.floor((a.atMs - fromMs) / bucketMs)
    if (i < 0 || i >= n) continue
    totals[i] = (totals[i] ?? 0) + 1
    const b = by[i] as Record<string, number>
    b[a.upstream] = (b[a.upstream] ?? 0) + 1
  }
  return totals.map((total, i) => ({ startMs: fromMs + i * bucketMs, endMs: fromMs + (i + 1) * bucketMs, total, byUpstream: by[i] ?? {} }))
}

const shareOf = (b: Bucket, upstream: string): number => (b.byUpstream[upstream] ?? 0) / b.total

/** Time of the first arrival at `upstream` in `[fromMs, untilMs)`, or null. */
export function firstArrival (arrivals: readonly Arrival[], upstream: string, fromMs: number, untilMs = Infinity): number | null {
  let first: number | null = null
  for (const a of arrivals) {
    if (a.upstream === upstream && a.atMs >= fromMs && a.atMs < untilMs && (first === null || a.atMs < first)) first = a.atMs
  }
  return first
}

/** Arrivals at `upstream` in `[fromMs, untilMs)`. */
export function countArrivals (arrivals: readonly Arrival[], upstream: string, fromMs: number, untilMs: number): number {
  return arrivals.filter(a => a.upstream === upstream && a.atMs >= fromMs && a.atMs < untilMs).length
}

/**
 * Settling time: the end of the first bucket in `[fromMs, untilMs)` where
 * `upstream` got at least `minShare` of the arrivals AND every later bucket
 * up to `untilMs` did too. Buckets with no arrivals are no evidence either
 * way (they neither qualify nor break the streak). Null when never settled.
 */
export function settledAt (arrivals: readonly Arrival[], upstream: string, minShare: number, fromMs: number, untilMs: number, bucketMs = BUCKET_MS): number | null {
  const buckets = bucketize(arrivals, fromMs, untilMs, bucketMs)
  let candidate: Bucket | null = null
  for (const b of buckets) {
    if (b.total === 0) continue
    if (shareOf(b, upstream) >= minShare) candidate ??= b
    else candidate = null
  }
  return candidate === null ? null : candidate.endMs
}

/** End of the first bucket (aligned to `fromMs`) in which `upstream` got at least `minShare` of the arrivals, or null. */
export function firstShareBucket (arrivals: readonly Arrival[], upstream: string, minShare: number, fromMs: number, untilMs: number, bucketMs = BUCKET_MS): number | null {
  const b = bucketize(arrivals, fromMs, untilMs, bucketMs).find(b => b.total > 0 && shareOf(b, upstream) >= minShare)
  return b === undefined ? null : b.endMs
}

/**
 * Largest share of `upstream` among the arrivals of any `windowMs` window in
 * `[fromMs, untilMs)`, windows starting every `stepMs` from `fromMs`; windows
 * with fewer than `minArrivals` arrivals are skipped. Null when there is none.
 */
export function maxWindowShare (arrivals: readonly Arrival[], upstream: string, fromMs: number, untilMs: number,
  windowMs = 1000, stepMs = BUCKET_MS, minArrivals = 1): { share: number, startMs: number, arrivals: number } | null {
  const slots = bucketize(arrivals, fromMs, untilMs, stepMs)
  const per = Math.max(1, Math.round(windowMs / stepMs))
  let best: { share: number, startMs: number, arrivals: number } | null = null
  for (let i = 0; i + per <= slots.length; i++) {
    let total = 0
    let mine = 0
    for (let j = i; j < i + per; j++) {
      const s = slots[j] as Bucket
      total += s.total
      mine += s.byUpstream[upstream] ?? 0
    }
    if (total < minArrivals || total === 0) continue
    if (best === null || mine / total > best.share) best = { share: mine / total, startMs: (slots[i] as Bucket).startMs, arrivals: total }
  }
  return best
}

/** Idempotency keys received more than once across all upstreams (arrivals without a key are ignored). */
export function duplicateKeys (arrivals: readonly Arrival[]): { keyed: number, distinct: number, duplicateKeys: number, extraDeliveries: number, examples: string[] } {
  const seen = new Map<string, number>()
  let keyed = 0
  for (const a of arrivals) {
    if (a.key === undefined) continue
    keyed++
    seen.set(a.key, (seen.get(a.key) ?? 0) + 1)
  }
  const dups = [...seen].filter(([, n]) => n > 1)
  return {
    keyed,
    distinct: seen.size,
    duplicateKeys: dups.length,
    extraDeliveries: dups.reduce((sum, [, n]) => sum + n - 1, 0),
    examples: dups.slice(0, 5).map(([k, n]) => `${k} ×${n}`)
  }
}

/** A client failure: no 2xx response (any other status, or a transport error). */
export const isFailure = (s: ClientSample): boolean => isError(s)

/** Client failures, with a breakdown by status (`503`) or transport error (`error:UND_ERR_…`). */
export function clientFailures (samples: readonly ClientSample[]): { total: number, failed: number, fiveXx: number, byOutcome: Record<string, number> } {
  const byOutcome: Record<string, number> = {}
  let failed = 0
  let fiveXx = 0
  for (const s of samples) {
    if (!isFailure(s)) continue
    failed++
    if (s.status >= 500) fiveXx++
    const k = s.status === 0 ? `error:${s.error ?? '?'}` : String(s.status)
    byOutcome[k] = (byOutcome[k] ?? 0) + 1
  }
  return { total: samples.length, failed, fiveXx, byOutcome }
}

/** Share of the requests sent in `[fromMs, untilMs)` that got a 5xx response. */
export function fiveXxShare (samples: readonly ClientSample[], fromMs: number, untilMs: number): { sent: number, fiveXx: number, share: number | null } {
  const sent = samples.filter(s => s.sentMs >= fromMs && s.sentMs < untilMs)
  const fiveXx = sent.filter(s => s.status >= 500).length
  return { sent: sent.length, fiveXx, share: sent.length === 0 ? null : fiveXx / sent.length }
}

/** Nearest-rank latency quantile of the requests sent in `[fromMs, untilMs)` (failures included, at their latency). */
export function latencyQuantile (samples: readonly ClientSample[], q: number, fromMs: number, untilMs: number): { n: number, ms: number | null } {
  const sorted = samples.filter(s => s.sentMs >= fromMs && s.sentMs < untilMs).map(s => s.latencyMs).sort((a, b) => a - b)
  return { n: sorted.length, ms: percentile(sorted, q) }
}

/**
 * Direction reversals of the shift: a `shift.step` (traffic moving to the
 * backups) whose previous enforced step-or-ramp event was a `shift.ramp`
 * (traffic moving back). A run of steps after one ramp is one reversal.
 */
export function countReversals (events: readonly TimedEvent[]): { count: number, atMs: number[] } {
  const moves = events.filter(e => e.enforced && (e.kind === 'shift.step' || e.kind === 'shift.ramp')).slice().sort((a, b) => a.seq - b.seq)
  const atMs: number[] = []
  let last: string | null = null
  for (const e of moves) {
    if (e.kind === 'shift.step' && last === 'shift.ramp') atMs.push(e.atMs)
    last = e.kind
  }
  return { count: atMs.length, atMs }
}

/** Arrivals per bucket and upstream from `fromMs` to `untilMs`, compact, for the JSON report. */
export function arrivalTimeline (arrivals: readonly Arrival[], upstreams: readonly string[], fromMs: number, untilMs: number, bucketMs = BUCKET_MS): Array<[number, ...number[]]> {
  return bucketize(arrivals, fromMs, untilMs, bucketMs).map(b => [b.startMs, ...upstreams.map(u => b.byUpstream[u] ?? 0)])
}
