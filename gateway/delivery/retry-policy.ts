/**
 * Whether a failed attempt may be tried again, and if not, exactly why.
 * Pure. The rules (issue: payment-safe delivery):
 * - only conditions listed in retry.on, within retry.attempts;
 * - only bodies kept for replay (no body, or buffered);
 * - idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) on any listed condition;
 *   POST/PATCH only when the failure proves the request was never sent, or
 *   when it carries an idempotency key the upstream itself dedupes;
 * - only if the backoff (or Retry-After) still fits the deadline.
 * The budget is checked by the caller last, because it consumes a token.
 */
import type { RetryConfig } from '../policy/snapshot.js'
import type { AttemptFailure } from './failure.js'

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

export const isIdempotent = (method: string): boolean => IDEMPOTENT.has(method)

export interface RetryQuestion {
  readonly cfg: RetryConfig | null
  readonly method: string
  readonly failure: AttemptFailure
  /** Attempts made so far (1 after the first). */
  readonly attempts: number
  readonly bodyReplayable: boolean
  readonly keyedAndDeduped: boolean
  /** ms left before the request deadline (Infinity when none). */
  readonly timeLeftMs: number
  /** 0..1, for full jitter. */
  readonly random: number
}

export type RetryAnswer = { readonly retry: true, readonly delayMs: number } | { readonly retry: false, readonly reason: string }

export function retryDecision (q: RetryQuestion): RetryAnswer {
  const { cfg, failure } = q
  if (cfg === null) return { retry: false, reason: 'the route has no retry policy' }
  if (q.attempts >= cfg.attempts) return { retry: false, reason: `all ${cfg.attempts} attempts used` }
  if (!failure.conditions.some(c => cfg.on.has(c))) {
    return { retry: false, reason: failure.conditions.length === 0 ? `${failure.detail}: not a retryable failure` : `${failure.conditions[0] ?? ''} is not in retry.on` }
  }
  if (!q.bodyReplayable) return { retry: false, reason: 'the request body was streamed (larger than retry.bufferBody, or chunked) and cannot be sent again' }
  if (!isIdempotent(q.method) && failure.delivery !== 'never-sent' && !q.keyedAndDeduped) {
    return { retry: false, reason: `${q.method} may have been processed (${failure.detail}) and carries no idempotency key the upstream dedupes: not sent again` }
  }
  const backoff = q.random * Math.min(cfg.backoffMaxMs, cfg.backoffBaseMs * 2 ** (q.attempts - 1))
  const delayMs = Math.max(backoff, failure.retryAfterMs ?? 0)
  if (delayMs >= q.timeLeftMs) return { retry: false, reason: `waiting ${Math.round(delayMs)}ms would pass the request deadline` }
  return { retry: true, delayMs }
}
