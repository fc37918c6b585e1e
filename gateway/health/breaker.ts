/**
 * A circuit breaker for one upstream of one route, on opossum. The data plane
 * asks `admit()` before choosing the upstream and reports each outcome
 * through a ticket; opossum does the rolling error rate, the open timer and
 * the single half-open probe. On top of it: a consecutive-failure trip and
 * an open time that doubles (capped, ±20% jitter) while half-open probes keep
 * failing.
 *
 * opossum is configured for the hot path (STYLE.md #9): no timeout of its
 * own (the route timeouts apply), no rolling percentiles, no snapshots, and
 * bucket rotation driven by a shared controller instead of a timer per breaker.
 */
import CircuitBreaker from 'opossum'
import type { EventEmitter } from 'node:events'
import type { BreakerConfig } from '../policy/snapshot.js'
import type { EventSink } from '../events/log.js'

export type BreakerState = 'closed' | 'open' | 'halfOpen'

/** Rejection reason that opossum counts as a failure. */
class CountedFailure extends Error {}
const FAILED = new CountedFailure('upstream attempt failed')
/** opossum's action: the request's own outcome promise, as it is (no extra promise per request). */
const passThrough = (outcome: Promise<void>): Promise<void> => outcome
const noop = (): void => {}

export interface BreakerTicket { done (failed: boolean): void }

export class Breaker {
  readonly config: BreakerConfig
  readonly #cb: CircuitBreaker<[Promise<void>], void>
  readonly #random: () => number
  /** opossum's live options (not in its type definitions): resetTimeout is read at each open. */
  readonly #options: { resetTimeout: number }
  #consecutive = 0
  #opens = 0
  #openedAt = 0
  #openFor = 0

  constructor (route: string, upstream: string, config: BreakerConfig, emit: EventSink, bucketController: EventEmitter, random: () => number = Math.random) {
    this.config = config
    this.#random = random
    this.#cb = new CircuitBreaker(passThrough, {
      timeout: false,
      errorThresholdPercentage: config.failureRate * 100,
      volumeThreshold: config.minRequests,
      resetTimeout: config.openForMs,
      rollingCountTimeout: config.windowMs,
      rollingCountBuckets: 10,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      rotateBucketController: bucketController,
      errorFilter: (err: unknown) => !(err instanceof CountedFailure)
    })
    this.#options = (this.#cb as unknown as { options: { resetTimeout: number } }).options
    const base = { route, upstream, enforced: true } as const
    this.#cb.on('open', () => {
      const stats = this.#cb.stats
      const rate = stats.fires > 0 ? stats.failures / stats.fires : 0
      this.#openedAt = Date.now()
      const openFor = this.#openFor = this.#options.resetTimeout
      this.#opens++
      // opossum read resetTimeout when it started this open's timer; set the
      // next one now (doubling while half-open probes keep failing).
      this.#options.resetTimeout = Math.min(config.maxOpenForMs, Math.round(config.openForMs * 2 ** this.#opens * (0.8 + 0.4 * this.#random())))
      emit({ ...base, kind: 'breaker.open', before: 'closed', after: 'open', measured: round(rate), threshold: config.failureRate, detail: `opened for ${openFor}ms: ${this.#consecutive >= config.consecutiveFailures && config.consecutiveFailures > 0 ? `${this.#consecutive} failures in a row` : `failure rate ${Math.round(rate * 100)}% of ${stats.fires} in ${config.windowMs}ms`}` })
    })
    this.#cb.on('halfOpen', () => emit({ ...base, kind: 'breaker.halfOpen', before: 'open', after: 'halfOpen', detail: 'letting one probe request through' }))
    this.#cb.on('close', () => {
      this.#opens = 0
      this.#consecutive = 0
      this.#options.resetTimeout = config.openForMs
      emit({ ...base, kind: 'breaker.close', before: 'halfOpen', after: 'closed', detail: 'probe request succeeded' })
    })
  }

  get state (): BreakerState {
    return this.#cb.closed ? 'closed' : this.#cb.halfOpen ? 'halfOpen' : 'open'
  }

  /** Whether a request may go now: closed, or half-open with its one probe slot free. */
  admit (): boolean {
    return this.#cb.closed || this.#cb.pendingClose
  }

  /** ms until the breaker lets a probe through (0 when it would admit now). */
  retryAfterMs (): number {
    if (this.admit()) return 0
    return Math.max(0, this.#openedAt + this.#openFor - Date.now())
  }

  /**
   * Starts tracking one request; call done() exactly once with its outcome.
   * Only a request the breaker admits is handed to opossum (as one pending
   * promise, which opossum settles into its rolling counts); one it would
   * refuse (open, or half-open with the probe out: panic mode, an upgrade)
   * counts only towards the failure streak, as opossum would not count it.
   */
  track (): BreakerTicket {
    return new Ticket(this, this.admit() ? this.#cb : null)
  }

  /** A ticket's outcome: the failure streak, and the consecutive-failure trip. */
  settled (failed: boolean): void {
    if (!failed) {
      this.#consecutive = 0
      return
    }
    this.#consecutive++
    if (this.config.consecutiveFailures > 0 && this.#consecutive >= this.config.consecutiveFailures && this.#cb.closed) this.#cb.open()
  }

  /** Whether an outcome (OUTCOMES name, status) counts as a failure here. */
  counts (outcome: string, status: number): boolean {
    return this.config.failOn.has(outcome) || (status > 0 && this.config.failOnStatus.has(status))
  }

  shutdown (): void {
    this.#cb.shutdown()
  }
}

/**
 * One tracked request: a promise opossum waits on, settled by done(). One
 * object per request; the promise's executor is the only closure.
 */
class Ticket implements BreakerTicket {
  readonly #breaker: Breaker
  #resolve: (() => void) | null = null
  #reject: ((err: Error) => void) | null = null

  constructor (breaker: Breaker, cb: CircuitBreaker<[Promise<void>], void> | null) {
    this.#breaker = breaker
    if (cb === null) return
    const outcome = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    // fire() rejects when the request failed (that is the point): handled here.
    cb.fire(outcome).catch(noop)
  }

  done (failed: boolean): void {
    // The streak first: the breaker may open on this failure before opossum hears of it.
    this.#breaker.settled(failed)
    if (failed) this.#reject?.(FAILED)
    else this.#resolve?.()
    this.#resolve = this.#reject = null
  }
}

const round = (x: number): number => Math.round(x * 1000) / 1000
