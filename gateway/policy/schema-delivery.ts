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

const Normalizers = ['trim', 'lowercase', 'digits'] as const
const Normalize = Type.Optional(Type.Array(Type.Unsafe<typeof Normalizers[number]>({ type: 'string', enum: [...Normalizers] }), {
  minItems: 1,
  maxItems: 8,
  description: 'Cleaning applied to the value, in order: trim (spaces around), lowercase, digits (keep only 0-9, e.g. for phone numbers). A value that is empty afterwards counts as missing. @default []'
}))

/**
 * One part of a derived key: a word (method, path) or an object naming where
 * the value is read. One object shape with three optional sources (not three
 * shapes in a union), so a mistake gets one message; compile-delivery.ts
 * checks that exactly one source is given.
 */
export const KeyPartSchema = Type.Union([
  Type.Unsafe<'method' | 'path'>({ type: 'string', enum: ['method', 'path'], description: 'method: the request method; path: the request path without its query string.' }),
  strict({
    header: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]{1,128}$', description: 'A request header\'s value; a header given twice makes the key missing.' })),
    query: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'A query parameter\'s value, percent-decoded; a parameter given twice makes the key missing.' })),
    body: Type.Optional(Type.String({ pattern: '^(/([^/~]|~[01])*)+$', maxLength: 512, description: 'A field of the JSON request body by JSON Pointer (RFC 6901), e.g. /phone or /message/template. Strings are used as they are, numbers and booleans as written; objects and arrays as canonical JSON; null counts as missing.', 'x-hint': 'write a JSON Pointer starting with /, e.g. /phone' })),
    normalize: Normalize
  }, { description: 'Where the value is read: exactly one of header, query or body.' })
], { 'x-hint': 'write method, path, or { header: NAME }, { query: NAME } or { body: /pointer }, optionally with normalize' })

export const IdempotencySchema = strict({
  header: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]+$', description: 'Request header carrying the key (IETF draft: Idempotency-Key). @default Idempotency-Key' })),
  ttl: Type.Optional(Duration('How long a stored outcome is replayed, counted from the first request\'s answer; with keyFrom, the dedupe window.', '24h')),
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
  keyFrom: Type.Optional(Type.Array(KeyPartSchema, {
    minItems: 1,
    maxItems: 16,
    description: 'Dedupe window for senders that send no key: the key is derived from these parts of the request (hashed together), and a repeat within `ttl` replays the first answer instead of being sent again. A repeat with the same parts is the same message even if the rest of its body differs: it is replayed, never refused with 422. A replay hands the first answer to whoever sends the same parts: add the sender\'s identity (e.g. { header: X-Api-Key }) as a part when senders must not see each other\'s answers. With keyFrom the client\'s key header is not used for dedupe (it is forwarded untouched), so a sender that makes a fresh key per retry cannot slip past the window. Each part is method, path, { header: NAME }, { query: NAME } or { body: /json/pointer }, optionally with normalize: [trim, lowercase, digits] (digits keeps only 0-9, for phone numbers); a part absent, empty after normalize, or given twice (a repeated header field or query parameter) makes the key missing (see keyMissing). Not set: keys come from the client\'s header. See docs/dedupe-windows.md.'
  })),
  keyMissing: Type.Optional(Type.Unsafe<'forward' | 'reject'>({
    type: 'string',
    enum: ['forward', 'reject'],
    description: 'With keyFrom, a request whose key cannot be derived (a part absent or empty, the body not JSON): forward = sent upstream without dedupe (counted as keyMissing); reject = 400 GW_ERR_IDEMPOTENCY_KEY_PARTS_MISSING naming the part, not sent. @default forward'
  })),
  keyMethods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]{1,16}$' }), {
    minItems: 1,
    uniqueItems: true,
    maxItems: 16,
    description: 'With keyFrom, the methods whose requests get a derived key; other methods pass undeduped. @default [POST, PATCH]'
  })),
  storeUnavailable: Type.Optional(Type.Unsafe<'reject' | 'local'>({
    type: 'string',
    enum: ['reject', 'local'],
    description: 'With store.redis, when Redis cannot be reached: reject = a keyed request gets 503 GW_ERR_IDEMPOTENCY_STORE_UNAVAILABLE with Retry-After and is not forwarded (nothing can be charged twice; the client repeats it with the same key later); local = keys are claimed in this instance\'s memory only, so a repeat sent to another instance during the outage may run again. Requests without a key are never affected. @default reject'
  }))
}, { description: 'Idempotency keys: a repeat with the same key and the same request replays the stored response; with a different request it gets 422. With keyFrom the key is derived from the request instead (a dedupe window for senders that send no key).' })

export const HedgeSchema = strict({
  delay: Type.Union([
    Type.Unsafe<'p90' | 'p95' | 'p99'>({ type: 'string', enum: ['p90', 'p95', 'p99'] }),
    Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?(ms|s)$' })
  ], { description: 'When to send the hedge: after the route\'s observed p90/p95/p99 latency (primaries, last stats window), or after a fixed duration (e.g. 50ms).', 'x-hint': 'write p90, p95, p99 or a duration like 50ms' }),
  minDelay: Type.Optional(Duration('Never hedge sooner than this (protects a route whose observed quantile is tiny or unknown).', '10ms'))
}, { description: 'Hedged reads (GET, HEAD only): if the first attempt has not answered after `delay`, send a second one to another upstream; the first good answer wins, the other is aborted. Hedges count against the retry budget.' })
