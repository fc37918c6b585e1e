/**
 * A sliding window of latency histograms (HDR) and outcome counters, made of
 * `slots` sub-windows of equal width. Recording touches only the current
 * slot; one shared timer calls rotate() (STYLE.md #7: record on the hot path,
 * decide off it). Reading merges the slots into a scratch histogram.
 */
import * as hdr from 'hdr-histogram-js'
import { OUTCOMES } from './outcome.js'

/** Latencies are recorded in microseconds; 1 h is the ceiling. */
const HIGHEST_US = 3_600_000_000

function newHistogram (): hdr.Histogram {
  return hdr.build({ bitBucketSize: 32, autoResize: false, lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 2, useWebAssembly: false })
}

export interface WindowView {
  /** Latency samples (responses and failed attempts, not aborts). */
  readonly samples: number
  /** Counts per outcome, keyed as in OUTCOMES. */
  readonly outcomes: Readonly<Record<string, number>>
  /** Latency quantiles in ms; null when there are no samples. */
  readonly latencyMs: { p50: number, p90: number, p95: number, p99: number, max: number } | null
}

export class SlidingWindow {
  readonly #hists: hdr.Histogram[]
  readonly #counts: Int32Array[]
  readonly #scratch = newHistogram()
  #current = 0

  constructor (slots: number) {
    this.#hists = Array.from({ length: slots }, newHistogram)
    this.#counts = Array.from({ length: slots }, () => new Int32Array(OUTCOMES.length))
  }

  get slots (): number { return this.#hists.length }

  /** @param latencyMs time to response headers (or to failure); negative = do not sample. */
  record (outcomeIndex: number, latencyMs: number): void {
    const counts = this.#counts[this.#current] as Int32Array
    counts[outcomeIndex] = (counts[outcomeIndex] as number) + 1
    if (latencyMs >= 0) {
      const us = Math.round(latencyMs * 1000)
      ;(this.#hists[this.#current] as hdr.Histogram).recordValue(us < 1 ? 1 : us > HIGHEST_US ? HIGHEST_US : us)
    }
  }

  /** Move on by one slot, forgetting the oldest. */
  rotate (): void {
    this.#current = (this.#current + 1) % this.#hists.length
    ;(this.#hists[this.#current] as hdr.Histogram).reset()
    ;(this.#counts[this.#current] as Int32Array).fill(0)
  }

  view (): WindowView {
    const merged = this.#scratch
    merged.reset()
    const totals = new Array<number>(OUTCOMES.length).fill(0)
    for (let i = 0; i < this.#hists.length; i++) {
      const h = this.#hists[i] as hdr.Histogram
      if (h.totalCount > 0) merged.add(h)
      const c = this.#counts[i] as Int32Array
      for (let j = 0; j < totals.length; j++) totals[j] = (totals[j] as number) + (c[j] as number)
    }
    const outcomes: Record<string, number> = {}
    OUTCOMES.forEach((o, j) => { outcomes[o] = totals[j] as number })
    const samples = merged.totalCount
    // HDR answers a bucket's highest equivalent value, which can exceed the
    // true maximum by the bucket width (1% here): clamp so p99 <= max.
    const maxUs = merged.maxValue
    const q = (p: number): number => Math.round(Math.min(merged.getValueAtPercentile(p), maxUs) / 10) / 100
    return {
      samples,
      outcomes,
      latencyMs: samples === 0 ? null : { p50: q(50), p90: q(90), p95: q(95), p99: q(99), max: Math.round(maxUs / 10) / 100 }
    }
  }

  close (): void {
    for (const h of this.#hists) h.destroy()
    this.#scratch.destroy()
  }
}
