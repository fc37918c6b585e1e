/**
 * The compiled, immutable form of a policy: numbers instead of human units,
 * defaults filled in, routes ready to match. A request reads one snapshot at
 * its start and keeps it to the end (STYLE.md #6).
 */
import type { TlsMaterial } from './tls-material.js'

export interface TimeoutsConfig {
  readonly connectMs: number
  readonly responseHeadersMs: number
  readonly bodyIdleMs: number
  /** 0 = no overall deadline. */
  readonly totalMs: number
  /** Per-attempt deadline to response headers; 0 = none beyond responseHeaders. */
  readonly attemptMs: number
}

export interface RetryConfig {
  readonly attempts: number
  /** Condition names from RETRY_CONDITIONS. */
  readonly on: ReadonlySet<string>
  readonly backoffBaseMs: number
  readonly backoffMaxMs: number
  readonly bufferBodyBytes: number
  readonly budgetRatio: number
  readonly budgetMinPerSecond: number
  readonly budgetWindowMs: number
}

export interface IdempotencyConfig {
  /** Lower-case header name. */
  readonly header: string
  readonly ttlMs: number
  readonly maxBodyBytes: number
  readonly waitForMs: number
  readonly onUnknownOutcome: 'conflict' | 'replay'
  readonly generate: boolean
  readonly upstreamDedupes: boolean
  readonly maxKeys: number
  readonly storeUnavailable: 'reject' | 'local'
  /** idempotency.keyFrom: the key is derived from the request (dedupe window); null = client keys. */
  readonly keyFrom: DerivedKeyConfig | null
}

/** How a value read from the request is cleaned before it goes into a derived key, applied in order. */
export type KeyNormalizer = 'trim' | 'lowercase' | 'digits'

/** One part of a derived key (idempotency.keyFrom), compiled: header names lower-case, JSON Pointers split into tokens. */
export type KeyPart =
  | { readonly from: 'method' }
  | { readonly from: 'path' }
  | { readonly from: 'header', readonly name: string, readonly normalize: readonly KeyNormalizer[] }
  | { readonly from: 'query', readonly name: string, readonly normalize: readonly KeyNormalizer[] }
  | { readonly from: 'body', readonly pointer: string, readonly tokens: readonly string[], readonly normalize: readonly KeyNormalizer[] }

export interface DerivedKeyConfig {
  readonly parts: readonly KeyPart[]
  /** Some part reads the JSON body. */
  readonly needsBody: boolean
  /** A request whose parts cannot all be read: forwarded without dedupe, or refused with 400. */
  readonly onMissing: 'forward' | 'reject'
  /** Methods whose requests get a derived key; the others pass undeduped. */
  readonly methods: ReadonlySet<string>
}

export interface HedgeConfig {
  /** Quantile of the route's observed latency, or null for a fixed delay. */
  readonly quantile: 'p90' | 'p95' | 'p99' | null
  readonly fixedDelayMs: number
  readonly minDelayMs: number
}

export interface UpstreamConfig {
  readonly name: string
  /** `route/upstream`: the key of its stats, stable across reloads. */
  readonly key: string
  /** scheme://host:port, the connection pool's key. */
  readonly origin: string
  /** Path prepended to the forwarded path ('' or '/base' without trailing slash). */
  readonly basePath: string
  /** host[:port] as written in the URL, sent as Host unless clientHost. */
  readonly hostHeader: string
  /** Send the client's Host (upstream `host: client`), else hostHeader. */
  readonly clientHost: boolean
  /** Whether `host` was written for this upstream (policy warnings). */
  readonly hostExplicit: boolean
  readonly weight: number
  readonly priority: number
  /** https:// upstreams only (compile-tls.ts); null for http://. */
  readonly tls: UpstreamTlsConfig | null
  /** Offer h2 by ALPN (https:// only). */
  readonly http2: boolean
}

export interface UpstreamTlsConfig {
  /** SNI and the name checked against the certificate; null for an IP address (checked against its IP entries). */
  readonly servername: string | null
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3'
  readonly verify: boolean
  /** Resolved paths, for /status (never the contents). */
  readonly files: { readonly ca: string | null, readonly cert: string | null, readonly key: string | null }
  readonly material: TlsMaterial
  /** Hash of everything above: part of the connection pool's key. */
  readonly id: string
}

export interface BreakerConfig {
  /** 0..1 */
  readonly failureRate: number
  readonly windowMs: number
  readonly minRequests: number
  /** 0 = off */
  readonly consecutiveFailures: number
  readonly openForMs: number
  readonly maxOpenForMs: number
  /** Outcome names (connect, timeout, reset, protocol, 5xx, 4xx) that count as failures. */
  readonly failOn: ReadonlySet<string>
  /** Single status codes that count as failures. */
  readonly failOnStatus: ReadonlySet<number>
}

export interface FailoverConfig {
  /** null = strict priority. */
  readonly overprovisioning: number | null
  readonly panic: boolean
}

export type Quantile = 'p50' | 'p90' | 'p95' | 'p99'

export interface ShiftConfig {
  readonly enforce: boolean
  readonly quantile: Quantile
  readonly windowMs: number
  readonly minSamples: number
  readonly thresholdMs: number
  readonly forMs: number
  /** Shares are fractions 0..1 of the route's traffic. */
  readonly step: number
  readonly intervalMs: number
  readonly max: number
  readonly minShare: number
  readonly cooldownMs: number
  readonly recover: {
    readonly thresholdMs: number
    readonly forMs: number
    readonly maxForMs: number
    readonly step: number
    readonly intervalMs: number
    readonly curve: 'linear' | 'exponential'
  }
  /** The primaries' failure-rate signal (5xx, reset, timeout, protocol); null = off. */
  readonly errors: {
    /** Trip above this share of failed attempts… */
    readonly rate: number
    /** …calm below this one. */
    readonly recoverRate: number
    /** Finished attempts the rate needs (newest first, see SignalWindow.failures). */
    readonly minSamples: number
  } | null
  /** The stall signal: completions have stopped while requests age; null = off. */
  readonly stall: {
    /** An attempt is stuck once older than factor × the primaries' healthy p99 (within [0.4 × threshold, threshold / 2]). */
    readonly factor: number
    /** Stuck attempts needed at least. */
    readonly minStuck: number
  } | null
  /** Synthetic latency probes on every upstream of the route; null = off. */
  readonly probe: {
    readonly path: string
    readonly intervalMs: number
    readonly timeoutMs: number
  } | null
}

export interface OutlierConfig {
  readonly consecutiveFailures: number
  readonly baseEjectionMs: number
  readonly maxEjectionMs: number
  readonly maxEjectionPercent: number
}

export interface HealthCheckConfig {
  readonly path: string
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly healthyThreshold: number
  readonly unhealthyThreshold: number
}

export interface RouteConfig {
  readonly name: string
  readonly index: number
  readonly pathPrefix: string
  /** Lower-case exact host, or suffix ".example.com" when wildcard; null = any host. */
  readonly host: { readonly exact: string } | { readonly suffix: string } | null
  readonly methods: ReadonlySet<string> | null
  /** [lower-case name, value] pairs that must all be present. */
  readonly headers: ReadonlyArray<readonly [string, string]> | null
  readonly stripPrefix: boolean
  readonly preserveHost: boolean
  readonly timeouts: TimeoutsConfig
  /** Largest request body in bytes (413 above). */
  readonly maxBodyBytes: number
  /** Sorted by priority, then file order. */
  readonly upstreams: readonly UpstreamConfig[]
  readonly breaker: BreakerConfig | null
  readonly failover: FailoverConfig
  readonly shift: ShiftConfig | null
  readonly outlier: OutlierConfig | null
  readonly healthCheck: HealthCheckConfig | null
  readonly retry: RetryConfig | null
  readonly idempotency: IdempotencyConfig | null
  readonly hedge: HedgeConfig | null
  /** WebSocket tunnels (compile-upgrade.ts); enabled by default. */
  readonly websocket: { readonly enabled: boolean, readonly idleTimeoutMs: number }
  /** Admission control (compile-admission.ts); null = no limit. */
  readonly admission: AdmissionConfig | null
  /** Which traffic the overload gate sheds first (low) and last (critical). @default normal */
  readonly priority: Priority
  /** Rate limits, checked in order (empty: none). */
  readonly rateLimits: readonly RateLimitConfig[]
  /** Set on a tenant bulkhead's route (compile-bulkhead.ts): it takes only these tenants' requests. */
  readonly tenant: TenantMatch | null
  /** bulkheads.perTenant: each tenant's share of the route (admission/tenant-cap.ts); null = none. */
  readonly tenantCap: TenantCapConfig | null
}

export interface TenantCapConfig {
  /** The tenant header, lower case. */
  readonly header: string
  readonly maxConcurrent: number
}

/** A bulkhead pool's condition: the header (lower case) has one of the values. */
export interface TenantMatch {
  readonly header: string
  readonly values: ReadonlySet<string>
  /** The route the pool belongs to, and the pool's name. */
  readonly route: string
  readonly pool: string
}

export type Priority = 'critical' | 'high' | 'normal' | 'low'

/** The gateway-wide overload gate (admission/overload.ts). */
export interface OverloadConfig {
  readonly maxConcurrent: number
  /** Per priority: the share of maxConcurrent in flight from which it is refused (critical: 1). */
  readonly shedAt: Readonly<Record<Priority, number>>
  /** Critical and high requests that may wait at their ceiling, and for how long. */
  readonly queue: number
  readonly queueTimeoutMs: number
}

export interface RateLimitConfig {
  readonly name: string
  readonly key: { readonly kind: 'route' } | { readonly kind: 'ip' } | { readonly kind: 'header', readonly header: string }
  readonly limit: number
  readonly windowMs: number
  readonly scope: 'global' | 'local'
  readonly storeDown: 'local' | 'allow' | 'deny'
}

export interface AdmissionConfig {
  readonly maxConcurrent: number
  readonly queue: number
  readonly queueTimeoutMs: number
  /** An adaptive limit between minLimit and maxConcurrent (control/adaptive-limit.ts); null = the static maxConcurrent. */
  readonly adaptive: { readonly minLimit: number, readonly tolerance: number } | null
}

export interface ListenerConfig {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly trustForwarded: boolean
  readonly paths: PathsConfig
  readonly timeouts: ListenerTimeoutsConfig
  readonly limits: ListenerLimitsConfig
  /** TLS termination (compile-tls.ts); null = plain HTTP. */
  readonly tls: ListenerTlsConfig | null
  /** HTTP/2 beside HTTP/1.1: ALPN h2 with tls, h2c (prior knowledge) without. */
  readonly http2: boolean
}

export interface ListenerCertificate {
  /** Lower-case SNI names it answers; `*.x` matches one label. */
  readonly names: readonly string[]
  readonly files: { readonly cert: string, readonly key: string }
  readonly subject: string
  readonly notAfter: string
  /** cert and key text. */
  readonly material: TlsMaterial
}

export interface ListenerTlsConfig {
  /** The first one is the default (no SNI, or a name none has). */
  readonly certificates: readonly ListenerCertificate[]
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3'
  readonly clientAuth: { readonly mode: 'require' | 'optional', readonly file: string, readonly material: TlsMaterial } | null
  /** The Strict-Transport-Security value; null = none. */
  readonly hsts: string | null
  /** Hash of the files' contents and settings: a reload with a new one installs new contexts. */
  readonly id: string
}

export interface PathsConfig {
  readonly slashes: 'keep' | 'merge' | 'reject'
  readonly escapedSlashes: 'keep' | 'reject' | 'decode'
}

export interface ListenerTimeoutsConfig {
  readonly requestHeadersMs: number
  readonly requestBodyMs: number
  readonly bodyIdleMs: number
  readonly keepAliveMs: number
}

export interface ListenerLimitsConfig {
  readonly maxConnections: number
  readonly maxHeaderCount: number
  readonly maxHeaderBytes: number
  /** Bytes per second of body that buy one more second of requestBody time. */
  readonly minBodyRate: number
  /** HTTP/2 streams at once per connection. */
  readonly maxConcurrentStreams: number
}

export interface AdminConfig {
  readonly host: string
  readonly port: number
  /** The resolved token (from the environment), or null when none is required. */
  readonly token: string | null
  readonly tokenEnv: string | null
}

export interface AccessLogConfig {
  /** 'stdout', 'stderr', or an absolute file path. */
  readonly destination: string
  /** Share (0..1) of successful responses logged; errors always are. */
  readonly sampleRatio: number
}

export interface PolicySnapshot {
  /** The file's `version` label, or the first 12 hex digits of its hash. */
  readonly version: string
  /** sha256 of the file text: unchanged files are not reloaded. */
  readonly hash: string
  /** sha256 over the upstream TLS settings with their files' contents: a certificate replaced on disk is a change to reload. */
  readonly filesHash: string
  readonly file: string
  readonly listeners: readonly ListenerConfig[]
  readonly admin: AdminConfig | null
  readonly statsWindowMs: number
  readonly statsResolutionMs: number
  readonly drainTimeoutMs: number
  readonly store: StoreConfig
  readonly accessLog: AccessLogConfig | null
  /** The gateway-wide overload gate; null = none. */
  readonly overload: OverloadConfig | null
  readonly routes: readonly RouteConfig[]
}

export interface RedisConfig {
  /** Exactly one of url, sentinels (+ name) and cluster is set. */
  readonly url: string | null
  readonly sentinels: ReadonlyArray<{ readonly host: string, readonly port: number }> | null
  readonly name: string | null
  readonly cluster: ReadonlyArray<{ readonly host: string, readonly port: number }> | null
  /** Resolved from passwordEnv; never shown or logged. */
  readonly password: string | null
  readonly passwordEnv: string | null
  readonly keyPrefix: string
  readonly commandTimeoutMs: number
  readonly connectTimeoutMs: number
  readonly maxBackoffMs: number
}

export interface StoreConfig {
  /** null = the memory store. */
  readonly redis: RedisConfig | null
  readonly syncIntervalMs: number
  readonly staleAfterMs: number
}

export const DEFAULT_TIMEOUTS: TimeoutsConfig = Object.freeze({
  connectMs: 2000,
  responseHeadersMs: 15_000,
  bodyIdleMs: 30_000,
  totalMs: 0,
  attemptMs: 0
})

/** Every file a policy names besides itself (TLS certificates, keys, CAs): watched like the policy. */
export function policyFiles (s: PolicySnapshot): string[] {
  const out: string[] = []
  for (const l of s.listeners) {
    for (const c of l.tls?.certificates ?? []) out.push(c.files.cert, c.files.key)
    if (l.tls?.clientAuth != null) out.push(l.tls.clientAuth.file)
  }
  for (const r of s.routes) {
    for (const u of r.upstreams) {
      const f = u.tls?.files
      if (f !== undefined) for (const p of [f.ca, f.cert, f.key]) if (p !== null) out.push(p)
    }
  }
  return [...new Set(out)]
}
