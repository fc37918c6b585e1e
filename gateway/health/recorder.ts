/**
 * The OutcomeSink of one route/upstream: an attempt's begin and end go to
 * its stats (windows, in-flight list) and its health (breaker, failure
 * streak) in one call each. Recording only; nothing is decided here.
 */
import type { OutcomeSink } from '../views/ports.js'
import type { BreakerTicket } from './breaker.js'
import { OUTCOMES, type InflightAttempt } from './outcome.js'
import type { UpstreamHealth } from './upstream-health.js'
import type { UpstreamStats } from './upstream-stats.js'

export class UpstreamRecorder implements OutcomeSink {
  readonly #stats: UpstreamStats
  readonly #health: UpstreamHealth

  constructor (stats: UpstreamStats, health: UpstreamHealth) {
    this.#stats = stats
    this.#health = health
  }

  begin (attempt: InflightAttempt): BreakerTicket | null {
    this.#stats.begin(attempt)
    return this.#health.begin()
  }

  end (attempt: InflightAttempt, ticket: BreakerTicket | null, outcome: number, sample: boolean, status: number): void {
    this.#stats.end(attempt, outcome, sample)
    this.#health.report(ticket, OUTCOMES[outcome] as string, status)
  }
}
