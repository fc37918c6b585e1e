/**
 * What one upstream attempt ended as. The data plane classifies, the health
 * layer counts; later the breaker and shift controller read the counts.
 */
import type { Linked } from '../core/linked-list.js'

export const OUTCOMES = ['2xx', '3xx', '4xx', '5xx', 'connect', 'timeout', 'reset', 'protocol', 'aborted'] as const
export type Outcome = typeof OUTCOMES[number]
export const OUTCOME_INDEX: Readonly<Record<Outcome, number>> = Object.freeze(
  Object.fromEntries(OUTCOMES.map((o, i) => [o, i])) as Record<Outcome, number>
)

/** Index into OUTCOMES for an upstream status code. */
export function statusOutcome (status: number): number {
  if (status >= 500) return 3
  if (status >= 400) return 2
  if (status >= 300) return 1
  return 0
}

/**
 * An upstream attempt that has been sent and has not produced response
 * headers yet. It carries its own list links (see core/linked-list.ts).
 */
export interface InflightAttempt extends Linked {
  /** Clock time (ms) the attempt was dispatched. */
  readonly startedAt: number
}
