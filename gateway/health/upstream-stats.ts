/**
 * Everything the data plane records about one upstream of one route: the
 * sliding window, all-time totals and the set of attempts still waiting for
 * response headers (so a controller can see a slow upstream before its slow
 * requests finish). Keyed `route/upstream`, kept across reloads.
 */
import type { Clock } from '../core/clock.js'
import { SlidingWindow, type WindowView } from './sliding-window.js'
import { SignalWindow } from './signal-window.js'
import { OUTCOMES, OUTCOME_INDEX, type InflightAttempt } from './outcome.js'
import { LinkedList } from '../core/linked-list.js'
import { LatencyBuckets } from '../core/latency-buckets.js'

/**
 * Outcomes the shift's error signal counts: the upstream took the request
 * and answered badly or not at all. Connect failures are left out on
 * purpose (docs/self-healing.md): nothing was sent, a retry is safe, and a
 * dead upstream is the breaker's, the health check's and the retry's job,
 * which bring it back as soon as it answers again.
 */
const SIGNAL_FAILURE: readonly boolean[] = OUTCOMES.map((_, i) =>
  i === OUTCOME_INDEX['5xx'] || i === OUTCOME_INDEX.timeout || i === OUTCOME_INDEX.reset || i === OUTCOME_INDEX.protocol)

const CONNECT = OUTCOME_INDEX.connect

export interface UpstreamStatsView {
  readonly route: string
  readonly upstream: string
  readonly inflight: number
  /** Synthetic probes of the shift (not in `window` or `total`): sent so far, and waiting now. */
  readonly probes: { readonly sent: number, readonly inflight: number }
  /** Age (ms) of the oldest attempt still waiting for headers; 0 when none. */
  readonly oldestInflightMs: number
  readonly window: WindowView & { readonly seconds: number }
  readonly total: Readonly<Record<string, number>>
}

export class UpstreamStats {
  readonly route: string
  readonly upstream: string
  /** Attempts waiting for headers, oldest first (a list, not a Set: see core/linked-list.ts). */
  readonly inflight = new LinkedList<InflightAttempt>()
  readonly #totals = new Float64Array(OUTCOMES.length)
  /** All-time time to response headers (or to the failure) of sampled attempts, for the metrics. */
  readonly latency = new LatencyBuckets()
  readonly #clock: Clock
  #window: SlidingWindow
  #windowMs: number
  /** The shift controller's short window; null when the route has no shift block. */
  signal: SignalWindow | null = null
  /**
   * The same window, fed by the shift's synthetic probes only (control/
   * latency probes), and the probes still waiting for an answer: kept apart
   * from real traffic so /status can tell them apart and the controller
   * uses them only where real traffic gives too little evidence.
   */
  probe: SignalWindow | null = null
  readonly probeInflight = new LinkedList<InflightAttempt>()
  /** When the newest probe that got a good answer was sent (clock ms; -Infinity before the first): how fresh the probes' word is. */
  probeOkStartedAt = -Infinity
  /** Good probe answers in a row (a failed one resets it): a window of a few probes alone is weak word that failures stopped. */
  probeOkStreak = 0
  #probes = 0

  constructor (route: string, upstream: string, clock: Clock, windowMs: number, resolutionMs: number) {
    this.route = route
    this.upstream = upstream
    this.#clock = clock
    this.#windowMs = windowMs
    this.#window = new SlidingWindow(Math.max(1, Math.round(windowMs / resolutionMs)))
  }

  /** An attempt was dispatched. */
  begin (attempt: InflightAttempt): void {
    this.inflight.add(attempt)
  }

  /**
   * The attempt ended (headers received, or failed). `sampleLatency` false
   * keeps it out of the latency histogram (a client abort says nothing about
   * the upstream's speed).
   */
  end (attempt: InflightAttempt, outcomeIndex: number, sampleLatency = true): void {
    this.inflight.delete(attempt)
    this.#totals[outcomeIndex] = (this.#totals[outcomeIndex] as number) + 1
    if (!sampleLatency) {
      this.#window.record(outcomeIndex, -1)
      return
    }
    const now = this.#clock.now()
    const latency = now - attempt.startedAt
    this.#window.record(outcomeIndex, latency)
    this.latency.observe(latency)
    this.signal?.record(now, latency, SIGNAL_FAILURE[outcomeIndex] === true, outcomeIndex === CONNECT)
  }

  /** A synthetic probe was sent (control/latency-probes.ts). */
  probeBegin (probe: InflightAttempt): void {
    this.probeInflight.add(probe)
  }

  /** The probe ended: `latencyMs` null when it got no answer to time (connect refused). */
  probeEnd (probe: InflightAttempt, latencyMs: number | null, failed: boolean): void {
    this.probeInflight.delete(probe)
    this.#probes++
    // Neither timed nor failed (could not connect, or stopped): no evidence.
    if (latencyMs !== null || failed) this.probe?.record(this.#clock.now(), latencyMs, failed)
    if (failed) this.probeOkStreak = 0
    else if (latencyMs !== null) this.probeOkStreak++
    if (latencyMs !== null && !failed && probe.startedAt > this.probeOkStartedAt) this.probeOkStartedAt = probe.startedAt
  }

  /** Give this upstream a signal window of `windowMs` (null removes it), and its probe twin; kept when unchanged. */
  useSignal (windowMs: number | null): void {
    if (windowMs === null) {
      this.signal = null
      this.probe = null
    } else if (this.signal?.windowMs !== windowMs) {
      this.signal = new SignalWindow(windowMs)
      this.probe = new SignalWindow(windowMs)
    }
  }

  rotate (): void {
    this.#window.rotate()
  }

  /** Re-shape the window when the policy changes it (history is dropped). */
  resize (windowMs: number, resolutionMs: number): void {
    const slots = Math.max(1, Math.round(windowMs / resolutionMs))
    if (slots === this.#window.slots && windowMs === this.#windowMs) return
    this.#window.close()
    this.#window = new SlidingWindow(slots)
    this.#windowMs = windowMs
  }

  /** Synthetic probes sent so far (those still waiting included). */
  get probesSent (): number {
    return this.#probes + this.probeInflight.size
  }

  /** All-time attempts by outcome (index into OUTCOMES). */
  total (outcomeIndex: number): number {
    return this.#totals[outcomeIndex] as number
  }

  view (): UpstreamStatsView {
    const now = this.#clock.now()
    const oldest = this.inflight.first?.startedAt ?? now
    const total: Record<string, number> = {}
    OUTCOMES.forEach((o, i) => { total[o] = this.#totals[i] as number })
    return {
      route: this.route,
      upstream: this.upstream,
      inflight: this.inflight.size,
      probes: { sent: this.probesSent, inflight: this.probeInflight.size },
      oldestInflightMs: Math.round(now - oldest),
      window: { ...this.#window.view(), seconds: this.#windowMs / 1000 },
      total
    }
  }

  close (): void {
    this.#window.close()
  }
}
