/**
 * Classifies a failed attempt for payment safety:
 * - never sent: the upstream cannot have seen it (could not connect, or the
 *   connection was never handed the request);
 * - maybe processed: it was (or may have been) written, and no good answer
 *   came back (reset or timeout after writing, a 5xx).
 * Also names the retry conditions it matches (policy `retry.on`).
 */
import type { ErrorSpec } from '../core/errors.js'
import { OUTCOME_INDEX } from '../health/outcome.js'

export type Delivery = 'never-sent' | 'maybe-processed'

export interface AttemptFailure {
  readonly delivery: Delivery
  /** Retry conditions this failure matches (e.g. ['connect-failure', 'refused'], ['503']). */
  readonly conditions: readonly string[]
  /** The gateway error a client gets if this is the final outcome (null for an upstream status, which is passed through). */
  readonly spec: ErrorSpec | null
  readonly outcome: number
  readonly detail: string
  /** Upstream status, 0 for a transport failure. */
  readonly status: number
  /** From a 429/503 Retry-After header, in ms. */
  readonly retryAfterMs: number | null
}

export function transportFailure (c: { spec: ErrorSpec, outcome: number, detail: string }, code: string, connected: boolean): AttemptFailure {
  const connectFailure = c.outcome === OUTCOME_INDEX.connect
  const conditions: string[] = []
  if (connectFailure) {
    conditions.push('connect-failure')
    if (code === 'ECONNREFUSED') conditions.push('refused')
  } else if (c.outcome === OUTCOME_INDEX.reset) conditions.push('reset')
  else if (c.outcome === OUTCOME_INDEX.timeout) conditions.push('timeout')
  return {
    delivery: connectFailure || !connected ? 'never-sent' : 'maybe-processed',
    conditions,
    spec: c.spec,
    outcome: c.outcome,
    detail: c.detail,
    status: 0,
    retryAfterMs: null
  }
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504])

/** An upstream answer that a retry policy may treat as a failure (429, 502, 503, 504), else null. */
export function statusFailure (status: number, retryAfter: string | null): AttemptFailure | null {
  if (!RETRYABLE_STATUS.has(status)) return null
  return {
    delivery: 'maybe-processed',
    conditions: [String(status)],
    spec: null,
    outcome: status === 429 ? OUTCOME_INDEX['4xx'] : OUTCOME_INDEX['5xx'],
    detail: `the upstream answered ${status}`,
    status,
    retryAfterMs: parseRetryAfter(retryAfter)
  }
}

/** Retry-After as delay-seconds or an HTTP date → ms (null when absent or invalid). */
export function parseRetryAfter (value: string | null, now = Date.now()): number | null {
  if (value === null || value === '') return null
  if (/^[0-9]+$/.test(value)) return Number(value) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? null : Math.max(0, at - now)
}
