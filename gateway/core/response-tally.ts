/**
 * What clients got, per route (and per listener for requests no route
 * took): responses by status class, gateway error codes, and the duration
 * from the request's arrival to the end of its response. Recorded once per
 * response when it closes (edge/listener.ts); read by the metrics.
 */
import { LatencyBuckets } from './latency-buckets.js'

/** Status classes, then responses that did not complete (client went away, or cut mid-body). */
export const RESPONSE_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'incomplete'] as const
const INCOMPLETE = RESPONSE_CLASSES.length - 1

export class ResponseTally {
  readonly byClass = new Float64Array(RESPONSE_CLASSES.length)
  /** Gateway error code (GW_ERR_*) → responses that carried it. Bounded by the error table. */
  readonly errors = new Map<string, number>()
  readonly duration = new LatencyBuckets()

  /** `code`: the gateway error the response carried; `ms` null when the arrival time is unknown (unparsable requests). */
  record (status: number, completed: boolean, code: string | null, ms: number | null): void {
    const c = completed ? Math.min(4, Math.max(0, Math.floor(status / 100) - 1)) : INCOMPLETE
    this.byClass[c] = (this.byClass[c] as number) + 1
    if (code !== null) this.errors.set(code, (this.errors.get(code) ?? 0) + 1)
    if (ms !== null) this.duration.observe(ms)
  }
}
