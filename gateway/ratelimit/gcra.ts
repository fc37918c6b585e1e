/**
 * The generic cell rate algorithm (GCRA): a token bucket of `limit`
 * requests per `windowMs`, refilled continuously, kept as one number per
 * key — the theoretical arrival time (TAT) of the next request. The same
 * arithmetic runs here (local limits) and in Redis (redis.ts, a Lua
 * script), so both answer alike.
 */
export interface GcraVerdict {
  readonly allowed: boolean
  /** The key's new TAT (unchanged when refused). */
  readonly tat: number
  /** Requests still allowed at once after this one. */
  readonly remaining: number
  /** Refused: wait this long before one more fits (ms); 0 when allowed. */
  readonly retryAfterMs: number
  /** Until the bucket is full again (ms). */
  readonly resetMs: number
}

export function gcra (storedTat: number | undefined, now: number, limit: number, windowMs: number): GcraVerdict {
  const period = windowMs / limit
  const tat = storedTat === undefined || storedTat < now ? now : storedTat
  const next = tat + period
  // Compared as "tat - now" against "window - period", not "next - now"
  // against the window: for a fresh key tat is now, and (now + period) - now
  // rounds above period for about 6 % of fractional clock readings, which
  // refused the first request of a limit-1 bucket.
  if (tat - now > windowMs - period) {
    return { allowed: false, tat, remaining: 0, retryAfterMs: next - now - windowMs, resetMs: tat - now }
  }
  return { allowed: true, tat: next, remaining: Math.floor((windowMs - (next - now)) / period + 1e-9), retryAfterMs: 0, resetMs: next - now }
}
