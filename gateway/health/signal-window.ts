/**
 * The signals the shift controller reads: a short sliding window of HDR
 * histograms (10 slots, rotated lazily from the injected clock, so no timer
 * and exact behaviour under a virtual clock), merged with the current ages
 * of requests still waiting for headers. A 200 ms → 5 s jump thus shows up
 * about one threshold after it starts, not five seconds later. Each slot
 * also counts finished attempts and failed ones, for the error-rate signal
 * and for "have completions stopped arriving" (the stall signal).
 */
import * as hdr from 'hdr-histogram-js'
import type { InflightAttempt } from './outcome.js'
import { ringIndex } from '../core/ring.js'

const SLOTS = 10
const HIGHEST_US = 3_600_000_000

export function newSignalHistogram (): hdr.Histogram {
  return hdr.build({ bitBucketSize: 32, autoResize: false, lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 2, useWebAssembly: false })
}

/** Clock time may be small: the slot index must not go negative. */
const slot = (index: number): number => ringIndex(index, SLOTS)

const toUs = (ms: number): number => {
  const us = Math.round(ms * 1000)
  return us < 1 ? 1 : us > HIGHEST_US ? HIGHEST_US : us
}

export class SignalWindow {
  readonly windowMs: number
  readonly #width: number
  readonly #slots = Array.from({ length: SLOTS }, newSignalHistogram)
  /** Finished attempts and failed ones per slot (a failure may have no latency sample). */
  readonly #done = new Float64Array(SLOTS)
  readonly #failed = new Float64Array(SLOTS)
  /** Attempts that could not reach the upstream (connect failures): counted in done, never failed. */
  readonly #unreachable = new Float64Array(SLOTS)
  /** Index (time / width) of the newest slot. */
  #head = -Infinity

  constructor (windowMs: number) {
    this.windowMs = windowMs
    this.#width = windowMs / SLOTS
  }

  /**
   * A finished attempt: its latency (null when it has none to give), whether
   * it failed, and whether it never reached the upstream (connect failure).
   */
  record (now: number, latencyMs: number | null, failed = false, unreachable = false): void {
    this.#advance(now)
    const i = slot(this.#head)
    if (latencyMs !== null) (this.#slots[i] as hdr.Histogram).recordValue(toUs(latencyMs))
    this.#done[i] = (this.#done[i] as number) + 1
    if (failed) this.#failed[i] = (this.#failed[i] as number) + 1
    if (unreachable) this.#unreachable[i] = (this.#unreachable[i] as number) + 1
  }

  /**
   * Failures over the newest slots that hold at least `minDone` finished
   * attempts (the whole window when it holds fewer): at high traffic the
   * rate reacts within one slot, at low traffic it uses what there is.
   */
  failures (now: number, minDone: number, into: Tally): void {
    this.#advance(now)
    let done = 0
    for (let k = 0; k < SLOTS && done < minDone; k++) {
      const i = slot(this.#head - k)
      done += this.#done[i] as number
      into.failed += this.#failed[i] as number
      into.unreachable += this.#unreachable[i] as number
    }
    into.done += done
  }

  /**
   * Attempts finished within the last `spanMs`: the current slot, then
   * older slots, the last one pro rata (finishing is taken as even within a
   * slot).
   */
  finishedWithin (now: number, spanMs: number): number {
    this.#advance(now)
    let done = this.#done[slot(this.#head)] as number
    let rest = spanMs - (now - this.#head * this.#width)
    for (let k = 1; k < SLOTS && rest > 0; k++) {
      done += (this.#done[slot(this.#head - k)] as number) * Math.min(1, rest / this.#width)
      rest -= this.#width
    }
    return done
  }

  /** Adds this window's samples to `into`. */
  mergeInto (into: hdr.Histogram, now: number): void {
    this.#advance(now)
    for (const h of this.#slots) if (h.totalCount > 0) into.add(h)
  }

  #advance (now: number): void {
    const index = Math.floor(now / this.#width)
    if (index <= this.#head) return
    const stale = Math.min(SLOTS, index - this.#head)
    for (let i = 1; i <= stale; i++) {
      const j = slot(index - stale + i)
      ;(this.#slots[j] as hdr.Histogram).reset()
      this.#done[j] = 0
      this.#failed[j] = 0
      this.#unreachable[j] = 0
    }
    this.#head = index
  }
}

/** Finished, failed and unreachable attempts, summed by {@link SignalWindow.failures}. */
export interface Tally { done: number, failed: number, unreachable: number }

/** Adds the current age of each in-flight attempt to `into`. */
export function addInflightAges (into: hdr.Histogram, inflight: Iterable<Pick<InflightAttempt, 'startedAt'>>, now: number): void {
  for (const a of inflight) into.recordValue(toUs(now - a.startedAt))
}

const PERCENTILE = { p50: 50, p90: 90, p95: 95, p99: 99 } as const

/** Quantile in ms of `h`, or null when it holds fewer than minSamples. */
export function quantileMs (h: hdr.Histogram, q: keyof typeof PERCENTILE, minSamples: number): { valueMs: number | null, samples: number } {
  const samples = h.totalCount
  if (samples < minSamples || samples === 0) return { valueMs: null, samples }
  return { valueMs: Math.min(h.getValueAtPercentile(PERCENTILE[q]), h.maxValue) / 1000, samples }
}
