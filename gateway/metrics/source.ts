/**
 * What the metrics read, at scrape time only: the composition root
 * (app/gateway.ts) builds this view of the runtime, so this folder never
 * imports the proxy or the control plane, and nothing here runs per request.
 */
import type { ResponseTally } from '../core/response-tally.js'
import type { LatencyBuckets } from '../core/latency-buckets.js'
import type { DeliveryCounters } from '../delivery/route-delivery.js'

export interface MetricsUpstream {
  readonly name: string
  readonly role: 'primary' | 'backup'
  readonly weight: number
  readonly available: boolean
  /** Expected share of the route's traffic now (0..1). */
  readonly share: number
  /** null: the route has no breaker. */
  readonly breaker: 'closed' | 'open' | 'halfOpen' | null
  readonly ejected: boolean
  /** null: no active health check on the route. */
  readonly healthCheckUp: boolean | null
  readonly inflight: number
  readonly oldestInflightMs: number
  /** Synthetic latency probes sent (null: the route's shift has no probes). */
  readonly probesSent: number | null
  /** All-time attempts by outcome name (OUTCOMES). */
  readonly attempts: ReadonlyArray<readonly [string, number]>
  readonly latency: LatencyBuckets
}

export interface MetricsRoute {
  readonly name: string
  readonly responses: ResponseTally
  readonly delivery: Readonly<DeliveryCounters>
  /** null: the route has no shift block. */
  readonly shift: { readonly applied: number, readonly phase: string } | null
  /** The route's rate limits: per limit its name and counters. */
  readonly rateLimits: ReadonlyArray<{ readonly name: string, readonly allowed: number, readonly refused: number, readonly storeDown: number }>
  /** null: the route has no bulkheads.perTenant. */
  readonly tenantCap: { readonly tenantsInFlight: number, readonly refused: number } | null
  /** null: the route has no admission block. */
  readonly admission: {
    readonly limit: number
    readonly inflight: number
    readonly waiting: number
    readonly queued: number
    readonly refused: Readonly<Record<'queueFull' | 'queueTimeout', number>>
  } | null
  readonly upstreams: readonly MetricsUpstream[]
}

export interface MetricsListener {
  readonly name: string
  readonly inflight: number
  readonly connections: { readonly open: number, readonly evicted: number, readonly refused: number }
  readonly unrouted: ResponseTally
}

export interface MetricsSource {
  routes (): readonly MetricsRoute[]
  listeners (): readonly MetricsListener[]
  policy (): { readonly version: string, readonly hash: string, readonly generation: number }
  /** The state store: kind, and whether it is reachable now. */
  store (): { readonly kind: string, readonly up: boolean }
  /** The gateway-wide overload gate; null when the policy has none. */
  overload (): { readonly limit: number, readonly inflight: number, readonly ceilings: Readonly<Record<string, number>>, readonly refused: Readonly<Record<string, number>> } | null
}
