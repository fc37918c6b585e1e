/**
 * Per-route delivery state that outlives a reload: the retry budget, the
 * idempotency store (scoped to the route) and the counters /status shows.
 * Rebuilt only when the route's retry or idempotency settings change.
 */
import type { Clock } from '../core/clock.js'
import type { IdempotencyConfig, RetryConfig } from '../policy/snapshot.js'
import type { IdempotencyStore } from '../idempotency/types.js'
import { RetryBudget } from './budget.js'
import { ResponseTally } from '../core/response-tally.js'

export interface DeliveryCounters {
  requests: number
  retries: number
  /** Retries a policy allowed but the budget refused. */
  budgetDenied: number
  /** Failures not retried because the request may have been processed. */
  unsafeNotRetried: number
  hedges: number
  hedgeWins: number
  neverSent: number
  maybeProcessed: number
  replays: number
  waited: number
  conflicts: number
  mismatches: number
  /** Keyed requests refused (503, not forwarded) because the shared store was unavailable. */
  storeUnavailable: number
  tooLarge: number
  /** idempotency.keyFrom: requests whose key could not be derived (forwarded undeduped, or refused with keyMissing: reject). */
  keyMissing: number
}

const zero = (): DeliveryCounters => ({ requests: 0, retries: 0, budgetDenied: 0, unsafeNotRetried: 0, hedges: 0, hedgeWins: 0, neverSent: 0, maybeProcessed: 0, replays: 0, waited: 0, conflicts: 0, mismatches: 0, storeUnavailable: 0, tooLarge: 0, keyMissing: 0 })

/** WebSocket tunnels of the route (proxy/upgrade.ts), shown in /status. */
export interface UpgradeCounters {
  /** Tunnels open now. */
  active: number
  /** Handshakes the upstream accepted (101), all time. */
  upgraded: number
  /** Handshakes the upstream answered without switching (its status passed back). */
  refused: number
  /** Handshakes that got no answer: no available upstream, connect failure, timeout, reset. */
  failed: number
  /** Tunnels closed by websocket.idleTimeout. */
  idleClosed: number
}

export class RouteDelivery {
  readonly counters: DeliveryCounters = zero()
  /** What clients got from this route (counted by the listener as each response closes). */
  readonly responses = new ResponseTally()
  readonly upgrades: UpgradeCounters = { active: 0, upgraded: 0, refused: 0, failed: 0, idleClosed: 0 }
  budget: RetryBudget | null = null
  store: IdempotencyStore | null = null
  retrySig = ''
  storeSig = ''
}

export type StoreFactory = (route: string, cfg: IdempotencyConfig) => IdempotencyStore

export class DeliveryRegistry {
  readonly #routes = new Map<string, RouteDelivery>()
  readonly #clock: Clock
  readonly #storeFactory: StoreFactory

  constructor (clock: Clock, storeFactory: StoreFactory) {
    this.#clock = clock
    this.#storeFactory = storeFactory
  }

  get (route: string, retry: RetryConfig | null, idempotency: IdempotencyConfig | null): RouteDelivery {
    let d = this.#routes.get(route)
    if (d === undefined) {
      d = new RouteDelivery()
      this.#routes.set(route, d)
    }
    const rs = retry === null ? '' : `${retry.budgetRatio}|${retry.budgetMinPerSecond}|${retry.budgetWindowMs}`
    if (rs !== d.retrySig) {
      d.budget = retry === null ? null : new RetryBudget(this.#clock, retry.budgetRatio, retry.budgetMinPerSecond, retry.budgetWindowMs)
      d.retrySig = rs
    }
    const ss = idempotency === null ? '' : `${idempotency.ttlMs}|${idempotency.maxKeys}`
    if (ss !== d.storeSig) {
      // Keys in flight on the old store finish there; new requests use the new one.
      void d.store?.close()
      d.store = idempotency === null ? null : this.#storeFactory(route, idempotency)
      d.storeSig = ss
    }
    return d
  }

  retain (routes: ReadonlySet<string>): void {
    for (const [name, d] of this.#routes) {
      if (routes.has(name)) continue
      void d.store?.close()
      this.#routes.delete(name)
    }
  }

  async close (): Promise<void> {
    await Promise.all([...this.#routes.values()].map(async d => await d.store?.close()))
    this.#routes.clear()
  }
}
