/**
 * A circuit breaker for one upstream of one route, on opossum. The data plane
 * asks `admit()` before choosing the upstream and reports each outcome
 * through a ticket. opossum holds the state: open, the open timer, half-open
 * with its single probe (which goes through opossum's fire and closes or
 * reopens it), and the events. On top of it: a consecutive-failure trip and
 * an open time that doubles (capped, ±20% jitter) while half-open probes keep
 * failing.
 *
 * While closed, outcomes are not fired through opossum: its per-call promise
 * chain (three promises, two emits and a latency array push per request) was
 * the largest single cost of a fully configured route (about 2.5 µs of CPU
 * per request, measured). They are counted here instead, in ten buckets over
 * the breaker's window rotated by the same shared controller opossum uses,
 * and each failure checks the rate as opossum does (more than `failureRate`
 * of at least `minRequests`; finished requests, where opossum also counts
 * those still in flight), then opens the breaker through opossum. The counts
 * start afresh when the breaker closes. A request that ends with no word
 * about the upstream (client gone, hedge lost) is not counted; a probe that
 * ends so counts as failed (nothing proves the upstream is back).
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

export interface BreakerTicket {
  /** The request's outcome reached the gateway: exactly once, or abandon() instead. */
  done (failed: boolean): void
  /**
   * The request ended without a word about the upstream (the client left, a
   * hedge lost): not counted. A probe that ends so counts as failed, since
   * nothing proves the upstream is back (the breaker reopens).
   */
  abandon (): void
}

const BUCKETS = 10

export class Breaker implements BreakerTicket {
  readonly config: BreakerConfig
  readonly #cb: CircuitBreaker<[Promise<void>], void>
  readonly #random: () => number
  /** opossum's live options (not in its type definitions): resetTimeout is read at each open. */
  readonly #options: { resetTimeout: number }
  readonly #bucketController: EventEmitter
  /** Finished requests and failures per bucket of the window; `#bucket` is the current one. */
  readonly #fires = new Float64Array(BUCKETS)
  readonly #failures = new Float64Array(BUCKETS)
  #bucket = 0
  #consecutive = 0
  #opens = 0
  #openedAt = 0
  #openFor = 0
  /** Half-open: the next open is a failed probe's, not a trip. */
  #probing = false
  /** Why the next close happens, when not a probe's success (an operator's reset). */
  #closeReason: { reason: string, from: BreakerState } | null = null

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
    this.#bucketController = bucketController
    bucketController.on('rotate', this.#rotate)
    const base = { route, upstream, enforced: true } as const
    this.#cb.on('open', () => {
      const { fires, failures } = this.#totals()
      const rate = fires > 0 ? failures / fires : 0
      const reopened = this.#probing
      this.#probing = false
      this.#openedAt = Date.now()
      const openFor = this.#openFor = this.#options.resetTimeout
      this.#opens++
      // opossum read resetTimeout when it started this open's timer; set the
      // next one now (doubling while half-open probes keep failing).
      this.#options.resetTimeout = Math.min(config.maxOpenForMs, Math.round(config.openForMs * 2 ** this.#opens * (0.8 + 0.4 * this.#random())))
      if (reopened) {
        emit({ ...base, kind: 'breaker.open', before: 'halfOpen', after: 'open', detail: `opened for ${openFor}ms: the probe request failed` })
        return
      }
      emit({ ...base, kind: 'breaker.open', before: 'closed', after: 'open', measured: round(rate), threshold: config.failureRate, detail: `opened for ${openFor}ms: ${this.#consecutive >= config.consecutiveFailures && config.consecutiveFailures > 0 ? `${this.#consecutive} failures in a row` : `failure rate ${Math.round(rate * 100)}% of ${fires} finished in ${config.windowMs}ms`}` })
    })
    this.#cb.on('halfOpen', () => {
      this.#probing = true
      emit({ ...base, kind: 'breaker.halfOpen', before: 'open', after: 'halfOpen', detail: 'letting one probe request through' })
    })
    this.#cb.on('close', () => {
      this.#probing = false
      this.#opens = 0
      this.#consecutive = 0
      this.#fires.fill(0)
      this.#failures.fill(0)
      this.#options.resetTimeout = config.openForMs
      const reason = this.#closeReason
      this.#closeReason = null
      emit({ ...base, kind: 'breaker.close', before: reason?.from ?? 'halfOpen', after: 'closed', detail: reason?.reason ?? 'probe request succeeded' })
    })
  }

  /** Closes an open or half-open breaker now, counts afresh (an operator forcing it closed); `reason` goes in its event. */
  reset (reason: string): void {
    if (this.#cb.closed) return
    this.#closeReason = { reason, from: this.state }
    this.#cb.close()
  }

  get state (): BreakerState {
    return this.#cb.closed ? 'closed' : this.#cb.halfOpen ? 'halfOpen' : 'open'
  }

  /** Whether a request may go now: closed, or half-open with its one probe slot free (never once shut down). */
  admit (): boolean {
    return this.#cb.closed || (this.#cb.halfOpen && this.#cb.pendingClose)
  }

  /** ms until the breaker lets a probe through (0 when it would admit now). */
  retryAfterMs (): number {
    if (this.admit()) return 0
    return Math.max(0, this.#openedAt + this.#openFor - Date.now())
  }

  /**
   * Starts tracking one request; call done() exactly once with its outcome.
   * Closed: the breaker itself is the ticket (nothing allocated per request).
   * Half-open with the probe slot free: the probe, through opossum. Refusing
   * (open, or the probe already out: panic mode, an upgrade): counted only
   * towards the failure streak, as opossum counts refused calls nowhere.
   */
  track (): BreakerTicket {
    if (this.#cb.closed) return this
    return this.#cb.halfOpen && this.#cb.pendingClose ? new Probe(this, this.#cb) : new Refused(this)
  }

  /** A request tracked while closed ended without an outcome: not counted. */
  abandon (): void {}

  /** The outcome of a request tracked while closed: counted, and the rate checked on a failure. */
  done (failed: boolean): void {
    const b = this.#bucket
    this.#fires[b] = (this.#fires[b] as number) + 1
    if (failed) this.#failures[b] = (this.#failures[b] as number) + 1
    this.settled(failed)
    if (!failed || !this.#cb.closed) return
    const { fires, failures } = this.#totals()
    if (fires >= this.config.minRequests && failures / fires > this.config.failureRate) this.#cb.open()
  }

  /** Any tracked outcome: the failure streak, and the consecutive-failure trip. */
  settled (failed: boolean): void {
    if (!failed) {
      this.#consecutive = 0
      return
    }
    this.#consecutive++
    if (this.config.consecutiveFailures > 0 && this.#consecutive >= this.config.consecutiveFailures && this.#cb.closed) this.#cb.open()
  }

  #totals (): { fires: number, failures: number } {
    let fires = 0
    let failures = 0
    for (let i = 0; i < BUCKETS; i++) {
      fires += this.#fires[i] as number
      failures += this.#failures[i] as number
    }
    return { fires, failures }
  }

  readonly #rotate = (): void => {
    this.#bucket = (this.#bucket + 1) % BUCKETS
    this.#fires[this.#bucket] = 0
    this.#failures[this.#bucket] = 0
  }

  /** Whether an outcome (OUTCOMES name, status) counts as a failure here. */
  counts (outcome: string, status: number): boolean {
    return this.config.failOn.has(outcome) || (status > 0 && this.config.failOnStatus.has(status))
  }

  shutdown (): void {
    this.#bucketController.off('rotate', this.#rotate)
    this.#cb.shutdown()
  }
}

/** The half-open probe: one pending promise that opossum waits on, settled by done(). */
class Probe implements BreakerTicket {
  readonly #breaker: Breaker
  #resolve: (() => void) | null = null
  #reject: ((err: Error) => void) | null = null

  constructor (breaker: Breaker, cb: CircuitBreaker<[Promise<void>], void>) {
    this.#breaker = breaker
    const outcome = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    // Should opossum not take it after all (shut down by a reload), nothing
    // else would handle its rejection; fire() rejects when the probe failed.
    outcome.catch(noop)
    cb.fire(outcome).catch(noop)
  }

  done (failed: boolean): void {
    this.#breaker.settled(failed)
    this.#settle(failed)
  }

  abandon (): void {
    this.#settle(true)
  }

  #settle (failed: boolean): void {
    if (failed) this.#reject?.(FAILED)
    else this.#resolve?.()
    this.#resolve = this.#reject = null
  }
}

/** A request sent while the breaker refuses (panic mode, an upgrade): only its streak counts. */
class Refused implements BreakerTicket {
  readonly #breaker: Breaker

  constructor (breaker: Breaker) {
    this.#breaker = breaker
  }

  done (failed: boolean): void {
    this.#breaker.settled(failed)
  }

  abandon (): void {}
}

const round = (x: number): number => Math.round(x * 1000) / 1000
