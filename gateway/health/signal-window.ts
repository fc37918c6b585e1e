/**
 * The latency signal the shift controller reads: a short sliding window of
 * HDR histograms (10 slots, rotated lazily from the injected clock, so no
 * timer and exact behaviour under a virtual clock), merged with the current
 * ages of requests still waiting for headers. A 200 ms → 5 s jump thus shows
 * up about one threshold after it starts, not five seconds later.
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
  /** Index (time / width) of the newest slot. */
  #head = -Infinity

  constructor (windowMs: number) {
    this.windowMs = windowMs
    this.#width = windowMs / SLOTS
  }

  record (now: number, latencyMs: number): void {
    this.#advance(now)
    ;(this.#slots[slot(this.#head)] as hdr.Histogram).recordValue(toUs(latencyMs))
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
    for (let i = 1; i <= stale; i++) (this.#slots[slot(index - stale + i)] as hdr.Histogram).reset()
    this.#head = index
  }
}

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
