/**
 * Retry budget (Finagle / Envoy style): retries and hedges may be at most
 * `ratio` of the route's requests over a sliding window, but at least
 * `minPerSecond`, so an outage cannot multiply the load. Counts live in 10
 * slots rotated lazily from the injected clock.
 */
import type { Clock } from '../core/clock.js'
import { ringIndex } from '../core/ring.js'

const SLOTS = 10

export class RetryBudget {
  readonly #clock: Clock
  readonly #ratio: number
  readonly #minPerSecond: number
  readonly #windowMs: number
  readonly #width: number
  readonly #requests = new Float64Array(SLOTS)
  readonly #retries = new Float64Array(SLOTS)
  #head = -1

  constructor (clock: Clock, ratio: number, minPerSecond: number, windowMs: number) {
    this.#clock = clock
    this.#ratio = ratio
    this.#minPerSecond = minPerSecond
    this.#windowMs = windowMs
    this.#width = windowMs / SLOTS
  }

  /** A client request arrived (not a retry). */
  request (): void {
    const i = this.#advance()
    this.#requests[i] = (this.#requests[i] as number) + 1
  }

  /** Takes one retry from the budget if there is one left. */
  tryRetry (): boolean {
    const i = this.#advance()
    let requests = 0
    let retries = 0
    for (let s = 0; s < SLOTS; s++) {
      requests += this.#requests[s] as number
      retries += this.#retries[s] as number
    }
    const allowed = Math.max(this.#minPerSecond * this.#windowMs / 1000, this.#ratio * requests)
    if (retries + 1 > allowed) return false
    this.#retries[i] = (this.#retries[i] as number) + 1
    return true
  }

  #advance (): number {
    const index = Math.floor(this.#clock.now() / this.#width)
    if (this.#head === -1) this.#head = index
    if (index > this.#head) {
      const stale = Math.min(SLOTS, index - this.#head)
      for (let k = 1; k <= stale; k++) {
        const s = slot(this.#head + k)
        this.#requests[s] = 0
        this.#retries[s] = 0
      }
      this.#head = index
    }
    return slot(this.#head)
  }
}

const slot = (i: number): number => ringIndex(i, SLOTS)
