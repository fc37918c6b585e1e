/**
 * Time is injected everywhere (STYLE.md #12) so tests and the future policy
 * simulator can drive it instead of sleeping.
 */
import { performance } from 'node:perf_hooks'

export interface Clock {
  /** Monotonic milliseconds (fractional); only differences are meaningful. */
  now (): number
  /** Wall-clock epoch milliseconds, for timestamps shown to people. */
  wall (): number
}

export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  wall: () => Date.now()
})

/** A clock that only moves when told to; for tests and simulation. */
export class ManualClock implements Clock {
  #now: number
  #wallOffset: number

  constructor (start = 0, wallStart = Date.UTC(2026, 0, 1)) {
    this.#now = start
    this.#wallOffset = wallStart - start
  }

  now (): number { return this.#now }
  wall (): number { return this.#now + this.#wallOffset }
  advance (ms: number): void { this.#now += ms }
}
