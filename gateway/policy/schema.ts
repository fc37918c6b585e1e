/**
 * The policy schema: the one source of the TypeScript type (`PolicyDoc`), the
 * Ajv validator (validate.ts) and policies/schema.json (npm run schema).
 *
 * Only settings the gateway really implements are here; unknown keys are
 * rejected everywhere (`additionalProperties: false`). Human units are
 * strings (`250ms`, `5s`, `30%`), turned into numbers by compile.ts.
 * `x-hint` is our own annotation: validate.ts appends it to the error message
 * to say how to fix a value.
 */
import { AdmissionSchema, OverloadSchema, PrioritySchema, RateLimitSchema } from './schema-admission.js'
import { Type, type Static } from '@sinclair/typebox'
import { strict, Duration, Name, Percent } from './schema-kit.js'
import { BreakerSchema, FailoverSchema, ShiftSchema, OutlierSchema, HealthCheckSchema } from './schema-resilience.js'
import { RetrySchema, IdempotencySchema, HedgeSchema } from './schema-delivery.js'
import { WebSocketSchema } from './schema-upgrade.js'
import { bulkheadsSchema } from './schema-bulkhead.js'
import { UpstreamTlsSchema, upstreamTlsBlock, ListenerTlsSchema } from './schema-tls.js'
import { StoreSchema } from './schema-store.js'
import { PathsSchema, ListenerTimeoutsSchema, ListenerLimitsSchema, RouteLimitsSchema } from './schema-edge.js'

const Port = Type.Integer({ minimum: 0, maximum: 65535, description: 'TCP port (0 = any free port).' })

export const ListenerSchema = strict({
  name: Type.Optional(Type.String({ ...Name('listener'), description: 'Name of the listener (shown in logs and /status). @default listener-<index>' })),
  trustForwarded: Type.Optional(Type.Boolean({
    description: 'Keep X-Forwarded-For/Forwarded chains sent by clients and append to them (only behind a trusted load balancer). When false they are replaced, so clients cannot spoof their address. @default false'
  })),
  host: Type.Optional(Type.String({ minLength: 1, description: 'Address to bind. @default 0.0.0.0' })),
  port: Port,
  paths: Type.Optional(PathsSchema),
  timeouts: Type.Optional(ListenerTimeoutsSchema),
  limits: Type.Optional(ListenerLimitsSchema),
  tls: Type.Optional(ListenerTlsSchema),
  http2: Type.Optional(Type.Boolean({
    description: 'HTTP/2 to clients. On a TLS listener ALPN offers h2 and http/1.1, and each client picks. On a plain listener true accepts h2c (HTTP/2 with prior knowledge) beside HTTP/1.1 on the same port; an HTTP/1.1 Upgrade: h2c is not taken. Routing, self-healing, retries and idempotency are the same for both. Bound at start-up. @default true with tls, else false'
  }))
})

export const AdminSchema = strict({
  host: Type.Optional(Type.String({ minLength: 1, description: 'Address to bind the admin API. @default 127.0.0.1 (localhost only)' })),
  port: Port,
  tokenEnv: Type.Optional(Type.String({
    pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
    description: 'Name of an environment variable holding the bearer token the admin API requires. The token itself never goes in the file.',
    'x-hint': 'give the NAME of an environment variable, e.g. GATEWAY_ADMIN_TOKEN'
  }))
}, { description: 'The admin API (status, health, metrics, events, reload) on its own listener. Omit to run without one. With tokenEnv set, the variable must hold at least 8 characters or the gateway refuses to start.' })

const timeouts = (description: string) => strict({
  connect: Type.Optional(Duration('Time allowed to open a TCP connection to the upstream.', '2s')),
  responseHeaders: Type.Optional(Duration('Time from sending the request until the upstream response headers arrive.', '15s')),
  bodyIdle: Type.Optional(Duration('Longest pause between two chunks of the upstream response body.', '30s')),
  total: Type.Optional(Duration('Deadline for the whole request, all attempts included, first byte in to last byte out. A client deadline header (X-Request-Timeout: 500ms, or grpc-timeout: 500m) may shorten it, never lengthen it. Unset = no overall deadline (streaming-friendly).', 'none')),
  attempt: Type.Optional(Duration('Deadline of one attempt (until its response headers); a retry gets a fresh one, within total.', 'none'))
}, { description })

export const TimeoutsSchema = timeouts('Per-route timeouts; unset keys fall back to defaults.timeouts, then to the built-in defaults.')

export const UpstreamSchema = strict({
  name: Name('upstream'),
  url: Type.String({
    pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$',
    description: 'Base URL: http(s)://host:port[/base-path]. The base path is prepended to the forwarded path.',
    'x-hint': 'write a URL like http://10.0.0.5:8080 or https://pay.internal/api, without query or fragment'
  }),
  weight: Type.Optional(Type.Integer({ minimum: 0, maximum: 10000, description: 'Relative share within its priority level; 0 drains the upstream. @default 1' })),
  role: Type.Optional(Type.Unsafe<'primary' | 'backup'>({
    type: 'string',
    enum: ['primary', 'backup'],
    description: 'primary = priority 0, backup = priority 1. Use either role or priority. @default primary',
    'x-hint': 'use "primary" or "backup"'
  })),
  priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 9, description: 'Priority level, 0 first; a level takes traffic only when every lower level is unavailable. @default from role (primary 0, backup 1)' })),
  host: Type.Optional(Type.Union([Type.Literal('client'), Type.Literal('upstream')], {
    description: 'The Host header this upstream gets: client (the client\'s, for another instance of the same service) or upstream (the host of its URL, for a foreign API such as a third-party payment channel, which would otherwise serve the wrong virtual host or refuse). @default upstream for https:// upstreams; for http:// the route\'s preserveHost'
  })),
  tls: Type.Optional(UpstreamTlsSchema),
  http2: Type.Optional(Type.Boolean({ description: 'Offer HTTP/2 to this https:// upstream (ALPN h2, then http/1.1): when it picks h2, requests share its connections as streams (undici allowH2, up to 100 at once per connection). https:// only. @default false' }))
})

export const MatchSchema = strict({
  pathPrefix: Type.String({
    pattern: '^/',
    description: 'Requests whose path starts with this string (plain prefix, like Envoy and Traefik).',
    'x-hint': 'start the prefix with "/"'
  }),
  host: Type.Optional(Type.String({
    pattern: '^(\\*\\.)?[A-Za-z0-9.-]+$',
    description: 'Host header to match, case-insensitive, port ignored; "*.example.com" matches any subdomain.',
    'x-hint': 'write a host name like api.example.com or *.example.com'
  })),
  methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z]+$' }), {
    minItems: 1, uniqueItems: true, description: 'HTTP methods to match (any case). @default all methods'
  })),
  headers: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }), Type.String(), {
    additionalProperties: false,
    description: 'Request headers that must be present with exactly these values (name case-insensitive). Unset = no header condition.'
  }))
}, { description: 'Which requests the route takes. Every condition given must hold. pathPrefix is a plain string prefix (as in Envoy and Traefik): /pay also matches /payroll; write /pay/ to match only below /pay.' })

export const RouteSchema = strict({
  name: Name('route'),
  match: MatchSchema,
  stripPrefix: Type.Optional(Type.Boolean({ description: 'Remove match.pathPrefix from the path before forwarding. @default false' })),
  preserveHost: Type.Optional(Type.Boolean({ description: 'Forward the client Host header (true) or the upstream URL host (false) to the route\'s http:// upstreams; https:// upstreams get their own host unless they say host: client (each upstream\'s host key overrides this). X-Forwarded-Host always carries the original. @default true' })),
  timeouts: Type.Optional(TimeoutsSchema),
  limits: Type.Optional(RouteLimitsSchema),
  upstreams: Type.Array(UpstreamSchema, { minItems: 1, description: 'The pool: named upstreams (names unique within the route) with weight and role or priority (not both).' }),
  breaker: Type.Optional(BreakerSchema),
  failover: Type.Optional(FailoverSchema),
  shift: Type.Optional(ShiftSchema),
  outlier: Type.Optional(OutlierSchema),
  healthCheck: Type.Optional(HealthCheckSchema),
  retry: Type.Optional(RetrySchema),
  idempotency: Type.Optional(IdempotencySchema),
  hedge: Type.Optional(HedgeSchema),
  websocket: Type.Optional(WebSocketSchema),
  upstreamTls: Type.Optional(upstreamTlsBlock('TLS for every https:// upstream of the route that has no tls block of its own. @default defaults.upstreamTls')),
  admission: Type.Optional(AdmissionSchema),
  priority: Type.Optional(PrioritySchema),
  rateLimits: Type.Optional(Type.Array(RateLimitSchema, { minItems: 1, maxItems: 8, description: 'Rate limits, each checked in turn (a request refused by one is refused); names unique within the route. See docs/overload.md.' })),
  bulkheads: Type.Optional(bulkheadsSchema(UpstreamSchema))
})

export const PolicySchema = strict({
  version: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Free-form label shown in /status next to the content hash. @default the first 12 hex digits of the file\'s sha256' })),
  listeners: Type.Array(ListenerSchema, { minItems: 1, description: 'Where clients connect. Bound at start-up: a reload cannot change them, except their TLS certificates, minVersion, client CA and HSTS. Ports must differ from each other and from the admin port (0 = any free port).' }),
  admin: Type.Optional(AdminSchema),
  defaults: Type.Optional(strict({
    timeouts: Type.Optional(timeouts('Timeouts every route inherits for the keys it does not set itself.')),
    upstreamTls: Type.Optional(upstreamTlsBlock('TLS for every https:// upstream without a tls block of its own or of its route. @default the system CAs, SNI from the URL host, TLSv1.2 and up'))
  }, { description: 'Values every route inherits unless it sets its own.' })),
  stats: Type.Optional(strict({
    window: Type.Optional(Duration('Sliding window of the per-upstream latency histograms and counters shown in /status.', '10s')),
    resolution: Type.Optional(Duration('Width of one slot of the sliding window; the window moves by this step. At most window/600.', '1s'))
  }, { description: 'Shape of the per-upstream sliding windows (latency histograms and outcome counters).' })),
  store: Type.Optional(StoreSchema),
  accessLog: Type.Optional(strict({
    destination: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'stdout, stderr, or a file (appended to, created with its folders; a relative path is relative to the policy file). A file is reopened on every reload (SIGHUP after log rotation). @default stdout' })),
    sample: Type.Optional(Percent('Share of successful responses (completed, status below 400) that get a line. Errors — 4xx, 5xx and responses that did not complete — always do.', '100%'))
  }, { description: 'One JSON line per request (pino): route, upstream (by name), method, path without the query, status, durations, bytes, request id, attempts, retry / hedge / replay flags, gateway error code. Never bodies, query strings, headers or upstream addresses. Omit for none; {} for every request on stdout. Changes apply on reload.' })),
  overload: Type.Optional(OverloadSchema),
  shutdown: Type.Optional(strict({
    drainTimeout: Type.Optional(Duration('On SIGTERM: how long to let in-flight requests finish before closing their connections.', '10s'))
  }, { description: 'Graceful shutdown.' })),
  routes: Type.Array(RouteSchema, { minItems: 1, description: 'Matched in order; the first match wins. Names must be unique; a route that an earlier one fully covers is an error.' })
}, {
  $id: 'https://self-healing-gateway.local/policy.schema.json',
  title: 'Self-healing gateway policy',
  description: 'Policy file for the self-healing gateway (YAML or JSON).'
})

export type PolicyDoc = Static<typeof PolicySchema>
export type RouteDoc = Static<typeof RouteSchema>
export type ListenerDoc = Static<typeof ListenerSchema>
export type UpstreamDoc = Static<typeof UpstreamSchema>
export type BulkheadsDoc = NonNullable<RouteDoc['bulkheads']>
export type TimeoutsDoc = Static<typeof TimeoutsSchema>
export type BreakerDoc = Static<typeof BreakerSchema>
export type ShiftDoc = Static<typeof ShiftSchema>
export type OutlierDoc = Static<typeof OutlierSchema>
export type HealthCheckDoc = Static<typeof HealthCheckSchema>
export type FailoverDoc = Static<typeof FailoverSchema>
