/**
 * Whether one upstream of one route may take traffic, combining what the
 * control plane decided (outlier ejection, active health checks) with the
 * breaker's gate. The data plane reads `available` per pick and reports
 * outcomes; it never decides anything itself.
 */
import type { Breaker, BreakerTicket } from './breaker.js'

export class UpstreamHealth {
  readonly route: string
  readonly upstream: string
  breaker: Breaker | null = null
  /** Clock time (ms) the current ejection ends; 0 = not ejected. */
  ejectedUntil = 0
  /** Times ejected so far (multiplies the next ejection time). */
  ejections = 0
  /** Active health checks say it is down. */
  probeDown = false
  /** Failed attempts in a row (5xx or gateway failure), for outlier detection. */
  failStreak = 0
  /** An operator drained it (control/overrides.ts): no new requests. */
  drained = false
  /** An operator forced the breaker: 'open' keeps it out, 'closed' lets it take traffic whatever the breaker says. */
  forcedBreaker: 'open' | 'closed' | null = null
  /** Clock time (ms) an operator's hold that keeps it out ends (for Retry-After); 0 = none. */
  heldUntil = 0

  constructor (route: string, upstream: string) {
    this.route = route
    this.upstream = upstream
  }

  get available (): boolean {
    if (this.drained || this.forcedBreaker === 'open') return false
    return this.ejectedUntil === 0 && !this.probeDown && (this.breaker === null || this.forcedBreaker === 'closed' || this.breaker.admit())
  }

  /** Start of an attempt: a breaker ticket when the route has a breaker (none while an operator forces it: it neither gates nor counts). */
  begin (): BreakerTicket | null {
    return this.breaker === null || this.forcedBreaker !== null ? null : this.breaker.track()
  }

  /** End of an attempt. `outcome` is an OUTCOMES name; `status` 0 when there was no response. */
  report (ticket: BreakerTicket | null, outcome: string, status: number): void {
    if (outcome === 'aborted') {
      ticket?.abandon() // a client that left says nothing about the upstream
      return
    }
    const gatewayFailure = outcome !== '2xx' && outcome !== '3xx' && outcome !== '4xx'
    this.failStreak = gatewayFailure ? this.failStreak + 1 : 0
    // The breaker may be gone (a reload removed it) while its tickets are out.
    ticket?.done(this.breaker?.counts(outcome, status) ?? gatewayFailure)
  }

  /** ms until it may take traffic again, for Retry-After; 0 if now; null if unknown (probes). */
  retryAfterMs (now: number): number | null {
    if (this.probeDown) return null
    const ejected = this.ejectedUntil === 0 ? 0 : Math.max(0, this.ejectedUntil - now)
    const held = this.heldUntil === 0 ? 0 : Math.max(0, this.heldUntil - now)
    return Math.max(ejected, held, this.forcedBreaker === null ? (this.breaker?.retryAfterMs() ?? 0) : 0)
  }
}
