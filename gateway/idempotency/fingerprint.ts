/**
 * What makes two requests "the same request" for an idempotency key.
 */
import { createHash } from 'node:crypto'

/**
 * sha256 (hex) of `${METHOD} ${path}\n` followed by the body bytes.
 *
 * `path` is the request target as received, query string included, so
 * `/pay?x=1` and `/pay?x=2` differ. Headers are deliberately not part of it:
 * retries legitimately change tracing ids, dates and auth tokens, and a
 * mismatch would then reject a genuine retry.
 */
export function fingerprint (method: string, path: string, body: Buffer | null): string {
  const hash = createHash('sha256').update(`${method.toUpperCase()} ${path}\n`)
  if (body !== null) hash.update(body)
  return hash.digest('hex')
}
