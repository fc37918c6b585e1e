/**
 * Per-route admission control: a concurrency limit with a bounded wait
 * queue and a queue timeout, in the spirit of HAProxy's maxconn / timeout
 * queue and Envoy's max_requests / max_pending_requests. Beyond it the
 * gateway sheds, at once and clearly, rather than let the upstream queue.
 */
import { Type } from '@sinclair/typebox'
import { strict, Duration, Count, Percent } from './schema-kit.js'

export const AdmissionSchema = strict({
  maxConcurrent: Count('Requests of this route in flight at once (admitted, until their response ends). One more waits in the queue.', 1, 1_000_000),
  queue: Type.Optional(Count('Requests that may wait for a slot, first come first served; one more is refused at once (503 GW_ERR_OVERLOADED). 0 = no waiting. @default maxConcurrent', 0, 1_000_000)),
  queueTimeout: Type.Optional(Duration('Longest a request waits in the queue; then it is refused (503 GW_ERR_OVERLOADED).', '1s')),
  adaptive: Type.Optional(strict({
    minLimit: Type.Optional(Count('The adaptive limit never goes below this. @default 4 (or maxConcurrent when smaller)', 1, 1_000_000)),
    tolerance: Type.Optional(Type.Number({ minimum: 1, maximum: 100, description: 'How many times its lowest recent latency the route may take before the limit comes down. @default 2' }))
  }, { description: 'Find the upstream\'s capacity from latency (a gradient limiter, after Netflix concurrency-limits): twice a second the limit moves by lowest-latency × tolerance / latency now, plus √limit of headroom while the route is busy, between minLimit and maxConcurrent. The limit in force is in /status and gateway_admission_limit; a change of a quarter or more is an overload.limit event.' }))
}, { description: 'Admission control: at most maxConcurrent requests of the route in flight, up to queue more waiting at most queueTimeout, the rest refused with 503 GW_ERR_OVERLOADED, Retry-After and a problem document, before anything is read or sent upstream. Shedding starts and stops are events; counts are in /status and /metrics. See docs/overload.md. Omit for no limit.' })

export const PrioritySchema = Type.Union([Type.Literal('critical'), Type.Literal('high'), Type.Literal('normal'), Type.Literal('low')], {
  description: 'Which traffic the gateway-wide overload gate (overload) refuses first: low, then normal, then high; critical only at the limit itself. Routes with a header match can give some requests of a path another priority. @default normal'
})

export const OverloadSchema = strict({
  maxConcurrent: Count('Requests in flight over all routes of the gateway (per process) at which even critical traffic is refused.', 1, 10_000_000),
  shedAt: Type.Optional(strict({
    low: Type.Optional(Percent('Share of maxConcurrent in flight from which low-priority requests are refused.', '50%')),
    normal: Type.Optional(Percent('Share of maxConcurrent in flight from which normal-priority requests are refused.', '75%')),
    high: Type.Optional(Percent('Share of maxConcurrent in flight from which high-priority requests are refused.', '90%'))
  }, { description: 'Where each priority starts being shed; each must be at most the next one up. Critical traffic is refused only at maxConcurrent.' })),
  queue: Type.Optional(Count('Critical and high requests that may wait, oldest first, for a slot when they reach their ceiling (low and normal are refused at once). 0 = none wait. @default maxConcurrent', 0, 10_000_000)),
  queueTimeout: Type.Optional(Duration('Longest a critical or high request waits for a slot; then it is refused (503 GW_ERR_SHED).', '250ms'))
}, { description: 'Gateway-wide overload protection by priority: one count of requests in flight over every route; a request is refused at once with 503 GW_ERR_SHED and Retry-After when the count has reached its priority\'s share of maxConcurrent, so low-priority traffic goes first and critical traffic keeps the top of the capacity. Omit for none. See docs/overload.md.' })

export const RateLimitSchema = strict({
  name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$', description: 'Name of the limit: shown in the RateLimit-Policy and RateLimit headers, /status and metrics.', 'x-hint': 'use letters, digits, "_", "." or "-", starting with a letter or digit' }),
  key: Type.String({
    pattern: '^(route|ip|header:[A-Za-z0-9!#$%&\'*+.^_`|~-]{1,64})$',
    description: 'What is counted apart: route (all of the route\'s traffic in one bucket), ip (the client address; the first X-Forwarded-For entry on a listener that trusts it), or header:NAME (e.g. header:X-Merchant-Id, header:X-Api-Key). A request without that header is not limited by this entry.',
    'x-hint': 'write route, ip, or header:X-Name'
  }),
  limit: Count('Requests allowed per window (also the largest burst).', 1, 1_000_000_000),
  window: Duration('The window the limit is counted over: the bucket refills limit requests per window, continuously.'),
  scope: Type.Optional(Type.Union([Type.Literal('global'), Type.Literal('local')], { description: 'global: one bucket per key for the whole fleet, in Redis (store.redis), one round trip per request; without a Redis store it is the same as local. local: a bucket per key in each gateway process. @default global' })),
  storeDown: Type.Optional(Type.Union([Type.Literal('local'), Type.Literal('allow'), Type.Literal('deny')], { description: 'A global limit while Redis cannot answer: local (each process enforces the limit on its own, so the fleet allows up to instances × limit), allow (not limited: fail open), deny (429 for every request: fail closed). @default local' }))
}, { description: 'One rate limit: a token bucket (GCRA) of limit requests per window for each key. Over it: 429 GW_ERR_RATE_LIMITED with Retry-After and the IETF RateLimit-Policy and RateLimit headers, before anything is read or sent upstream.' })
