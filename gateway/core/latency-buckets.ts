/**
 * A cumulative latency histogram with fixed bucket bounds, for Prometheus
 * (metrics/): recording is a short scan and two additions, with no label
 * lookup and no allocation, so it can sit on the hot path. Counts are kept
 * per bucket (not cumulative); the exposition sums them up.
 */

/** Upper bounds in seconds: sub-millisecond gateway overhead up to a minute-long upload. */
export const LATENCY_BOUNDS_S: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

const BOUNDS_MS = LATENCY_BOUNDS_S.map(s => s * 1000)

export class LatencyBuckets {
  /** Observations per bucket; the last slot is +Inf. */
  readonly counts = new Float64Array(BOUNDS_MS.length + 1)
  /** Sum of the observations, in seconds. */
  sum = 0
  count = 0

  observe (ms: number): void {
    let i = 0
    while (i < BOUNDS_MS.length && ms > (BOUNDS_MS[i] as number)) i++
    this.counts[i] = (this.counts[i] as number) + 1
    this.sum += ms / 1000
    this.count++
  }
}
