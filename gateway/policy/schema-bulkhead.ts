/**
 * Tenant bulkheads: named tenants of a route (by the value of one request
 * header) get their own pool — their own upstreams, admission gate, rate
 * limits and priority — so one tenant's burst cannot starve the others.
 * compile-bulkhead.ts turns each pool into a route of its own, placed just
 * before the route it belongs to. See docs/overload.md.
 *
 * The upstream schema is passed in (it lives in schema.ts, which imports
 * this file).
 */
import { Type, type TSchema } from '@sinclair/typebox'
import { strict, Name, Count } from './schema-kit.js'
import { AdmissionSchema, PrioritySchema, RateLimitSchema } from './schema-admission.js'

export const MAX_BULKHEAD_TENANTS = 10_000

export const bulkheadsSchema = <U extends TSchema>(upstream: U) => strict({
  header: Type.String({
    pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]{1,64}$',
    description: 'The request header that names the tenant, e.g. X-Tenant or X-Merchant-Id (name case-insensitive; the value is compared exactly).',
    'x-hint': 'write a header name such as X-Tenant'
  }),
  perTenant: Type.Optional(strict({
    maxConcurrent: Count('Requests of one tenant in flight at once on the route (and on each of its pools). One more is refused at once: 429 GW_ERR_TENANT_BUSY with Retry-After: 1.', 1, 1_000_000)
  }, { description: 'A fair share for every tenant, named in a pool or not: a tenant nobody gave a pool still cannot take the whole route. Counted per tenant header value (the first field); a request without the header is not counted. Checked after the rate limits, before the overload and admission gates.' })),
  pools: Type.Optional(Type.Array(strict({
    name: Name('bulkhead pool'),
    tenants: Type.Array(Type.String({
      pattern: '^[\\x21-\\x7e]([\\x20-\\x7e]{0,254}[\\x21-\\x7e])?$',
      description: 'A value of the tenant header.',
      'x-hint': 'write the header value exactly, printable ASCII without leading or trailing spaces, at most 256 characters'
    }), { minItems: 1, maxItems: MAX_BULKHEAD_TENANTS, uniqueItems: true, description: 'The tenants held in this pool: values of the tenant header. A request is in the pool when any of its tenant header fields has one of these values exactly. A tenant may be in one pool only.' }),
    upstreams: Type.Optional(Type.Array(upstream, { minItems: 1, description: 'The pool\'s own upstreams (e.g. a dedicated cluster). @default the route\'s upstreams, with their own breakers, health and statistics for this pool' })),
    admission: Type.Optional(AdmissionSchema),
    rateLimits: Type.Optional(Type.Array(RateLimitSchema, { minItems: 1, maxItems: 8, description: 'The pool\'s own rate limits (its buckets are its own). @default the route\'s rate limits, counted apart for the pool' })),
    priority: Type.Optional(PrioritySchema)
  }, { description: 'One bulkhead: its tenants, and what it has of its own. Everything it does not set is the route\'s (timeouts, retries, breaker, shift, health checks, …), and admission, rate limits and upstreams are separate instances: the pool\'s requests never count against the route\'s gate, buckets or breakers. In /status and metrics the pool is a route named ROUTE.POOL.' }), { minItems: 1, maxItems: 64, description: 'The pools, each with a name unique within the route. A bulkheads block needs pools, perTenant or both.' }))
}, { description: 'Tenant bulkheads: requests whose tenant header names a tenant of a pool are served by that pool instead of the route (a route named ROUTE.POOL, matched just before this one), so a tenant\'s flood is refused at its own gate and never reaches the route\'s upstreams or capacity. See docs/overload.md.' })
