/**
 * Per-route delivery blocks for payment safety: retries with a budget,
 * idempotency keys, hedged reads. Defaults are safe: nothing non-idempotent
 * is ever retried unless it provably was not sent.
 */
import { Type } from '@sinclair/typebox'
import { strict, Duration, Percent, Count, Size } from './schema-kit.js'

export const RETRY_CONDITIONS = ['connect-failure', 'refused', 'reset', 'timeout', '502', '503', '504', '429'] as const

export const RetrySchema = strict({
  attempts: Type.Optional(Count('Most attempts per request, the first included (2 = one retry). @default 2', 1, 10)),
  on: Type.Optional(Type.Array(Type.Union([
    Type.Unsafe<typeof RETRY_CONDITIONS[number]>({ type: 'string', enum: [...RETRY_CONDITIONS] }),
    Type.Unsafe<429 | 502 | 503 | 504>({ type: 'integer', enum: [429, 502, 503, 504] })
  ]), {
    minItems: 1,
    uniqueItems: true,
    description: 'Failures that may be retried: connect-failure (could not connect: refused, connect timeout, DNS), refused (only ECONNREFUSED), reset (connection reset or closed before the response), timeout (no response headers in time), 502/503/504 and 429 (an upstream status; 429 waits for Retry-After). Non-idempotent requests (POST, PATCH) are retried only when the failure proves the request was never sent, or when they carry an idempotency key and idempotency.upstreamDedupes is true. @default [connect-failure, reset, 502, 503, 504]'
  })),
  backoff: Type.Optional(strict({
    base: Type.Optional(Duration('First backoff; each retry doubles it (full jitter: a random wait between 0 and the value).', '25ms')),
    max: Type.Optional(Duration('Cap of the backoff.', '250ms'))
  }, { description: 'Wait between attempts.' })),
  bufferBody: Type.Optional(Size('Request bodies up to this size (by Content-Length) are kept to be sent again; larger or chunked bodies are streamed once and never retried.', '64kb')),
  budget: Type.Optional(strict({
    ratio: Type.Optional(Percent('Retries (and hedges) may be at most this share of the route\'s requests over the window…', '20%')),
    minPerSecond: Type.Optional(Count('…but at least this many per second, so a quiet route can still retry. @default 3', 0, 10000)),
    window: Type.Optional(Duration('Window over which requests and retries are counted.', '10s'))
  }, { description: 'Retry budget: retries cannot multiply load during an outage. Retries after a connect failure are outside it: nothing reached an upstream, so they add no load there.' }))
}, { description: 'Retries, always to another upstream where there is one.' })

export const IdempotencySchema = strict({
  header: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]+$', description: 'Request header carrying the key (IETF draft: Idempotency-Key). @default Idempotency-Key' })),
  ttl: Type.Optional(Duration('How long a stored outcome is replayed.', '24h')),
  maxBodySize: Type.Optional(Size('Largest request body fingerprinted and largest response body stored. A larger keyed request gets 413.', '1mb')),
  waitFor: Type.Optional(Duration('A repeat that arrives while the first is in flight waits this long for its outcome, then gets 409.', '10s')),
  onUnknownOutcome: Type.Optional(Type.Unsafe<'conflict' | 'replay'>({
    type: 'string',
    enum: ['conflict', 'replay'],
    description: 'When the first attempt may have been processed but gave no answer (reset or timeout after the request was written, or 5xx): conflict = repeats get 409 "outcome unknown" until the key expires; replay = repeats get the same gateway error again. Never forwarded again. @default conflict'
  })),
  generate: Type.Optional(Type.Boolean({ description: 'Make a key (UUID) for requests that come without one and pass it upstream, so gateway retries of them are keyed too. @default false' })),
  upstreamDedupes: Type.Optional(Type.Boolean({ description: 'The upstream honours the key itself (it never processes one key twice): keyed non-idempotent requests may then be retried after "maybe processed" failures. @default false' })),
  maxKeys: Type.Optional(Count('Most keys kept in memory; the oldest are evicted first (the memory store only; Redis is bounded by its own maxmemory). @default 100000', 1, 10_000_000)),
  storeUnavailable: Type.Optional(Type.Unsafe<'reject' | 'local'>({
    type: 'string',
    enum: ['reject', 'local'],
    description: 'With store.redis, when Redis cannot be reached: reject = a keyed request gets 503 GW_ERR_IDEMPOTENCY_STORE_UNAVAILABLE with Retry-After and is not forwarded (nothing can be charged twice; the client repeats it with the same key later); local = keys are claimed in this instance\'s memory only, so a repeat sent to another instance during the outage may run again. Requests without a key are never affected. @default reject'
  }))
}, { description: 'Idempotency keys: a repeat with the same key and the same request replays the stored response; with a different request it gets 422.' })

export const HedgeSchema = strict({
  delay: Type.Union([
    Type.Unsafe<'p90' | 'p95' | 'p99'>({ type: 'string', enum: ['p90', 'p95', 'p99'] }),
    Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?(ms|s)$' })
  ], { description: 'When to send the hedge: after the route\'s observed p90/p95/p99 latency (primaries, last stats window), or after a fixed duration (e.g. 50ms).', 'x-hint': 'write p90, p95, p99 or a duration like 50ms' }),
  minDelay: Type.Optional(Duration('Never hedge sooner than this (protects a route whose observed quantile is tiny or unknown).', '10ms'))
}, { description: 'Hedged reads (GET, HEAD only): if the first attempt has not answered after `delay`, send a second one to another upstream; the first good answer wins, the other is aborted. Hedges count against the retry budget.' })
