/**
 * A route's rate limits at request time: for each limit the request's key
 * (route, client address, or a header), then one bucket take — local, or in
 * Redis for a global limit while Redis answers (one round trip), else the
 * limit's storeDown rule. The first limit that refuses decides; a limit
 * whose key the request lacks does not apply. Counters are plain numbers
 * read by /status and /metrics.
 */
import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { RateLimitConfig } from '../policy/snapshot.js'
import { headerValue, type ScannedRequest } from '../proxy/headers.js'
import { LocalBuckets } from './local.js'
import type { RedisBuckets } from './redis.js'

/** Where global limits are kept: Redis (with whether it is reachable now), or nowhere (memory store: global = local). */
export interface GlobalBuckets {
  readonly buckets: RedisBuckets
  readonly keyPrefix: string
  up (): boolean
}

export interface RateVerdict {
  readonly allowed: boolean
  /** The limit that refused (or, when allowed, null). */
  readonly limit: RateLimitConfig | null
  readonly retryAfterMs: number
  readonly resetMs: number
}

const ALLOWED: RateVerdict = { allowed: true, limit: null, retryAfterMs: 0, resetMs: 0 }

export class LimitCounters {
  allowed = 0
  refused = 0
  /** Decided by storeDown because Redis could not answer. */
  storeDown = 0
}

/** One limit with its local buckets and counters, kept across reloads while the route keeps a limit of that name. */
export class RateLimit {
  config: RateLimitConfig
  readonly local = new LocalBuckets()
  readonly counters = new LimitCounters()

  constructor (config: RateLimitConfig) {
    this.config = config
  }
}

export class RouteRateLimits {
  readonly route: string
  readonly limits: readonly RateLimit[]
  readonly #global: GlobalBuckets | null
  readonly #now: () => number

  constructor (route: string, limits: readonly RateLimit[], global: GlobalBuckets | null, now: () => number) {
    this.route = route
    this.limits = limits
    this.#global = global
    this.#now = now
  }

  /** A verdict now (local limits only), or a promise of one (a global limit asks Redis). */
  check (req: IncomingMessage, scan: ScannedRequest): RateVerdict | Promise<RateVerdict> {
    for (let i = 0; i < this.limits.length; i++) {
      const l = this.limits[i] as RateLimit
      const key = keyOf(l.config, req, scan)
      if (key === null) continue
      if (l.config.scope === 'global' && this.#global !== null) return this.#remote(i, key, req, scan)
      const v = this.#local(l, key)
      if (!v.allowed) return v
    }
    return ALLOWED
  }

  #local (l: RateLimit, key: string): RateVerdict {
    const c = l.config
    return counted(l, l.local.take(key, this.#now(), c.limit, c.windowMs))
  }

  /** From limit `from` on (its key already known), with Redis for the global ones. */
  async #remote (from: number, firstKey: string, req: IncomingMessage, scan: ScannedRequest): Promise<RateVerdict> {
    const g = this.#global as GlobalBuckets
    for (let i = from; i < this.limits.length; i++) {
      const l = this.limits[i] as RateLimit
      const v = await this.#one(l, g, l.config, i === from ? firstKey : keyOf(l.config, req, scan))
      if (!v.allowed) return v
    }
    return ALLOWED
  }

  async #one (l: RateLimit, g: GlobalBuckets, c: RateLimitConfig, key: string | null): Promise<RateVerdict> {
    if (key === null) return ALLOWED
    if (c.scope === 'local') return this.#local(l, key)
    if (g.up()) {
      try {
        return counted(l, await g.buckets.take(`${g.keyPrefix}rl:{${this.route}}:${c.name}:${key}`, c.limit, c.windowMs))
      } catch { /* timed out or refused: storeDown decides */ }
    }
    l.counters.storeDown++
    if (c.storeDown === 'allow') return ALLOWED
    if (c.storeDown === 'deny') return counted(l, { allowed: false, retryAfterMs: 1000, resetMs: c.windowMs })
    return this.#local(l, key)
  }
}

/** A bucket's answer, counted on its limit. */
function counted (l: RateLimit, v: { readonly allowed: boolean, readonly retryAfterMs: number, readonly resetMs: number }): RateVerdict {
  if (v.allowed) {
    l.counters.allowed++
    return ALLOWED
  }
  l.counters.refused++
  return { allowed: false, limit: l.config, retryAfterMs: v.retryAfterMs, resetMs: v.resetMs }
}

/** The request's key for a limit; null when it has none (the header is missing). Long keys are hashed. */
export function keyOf (c: RateLimitConfig, req: IncomingMessage, scan: ScannedRequest): string | null {
  let key: string | null
  switch (c.key.kind) {
    case 'route': return '*'
    case 'ip': {
      const first = scan.xff === null ? null : (scan.xff.split(',')[0] as string).trim()
      key = first !== null && first !== '' ? first : req.socket.remoteAddress ?? ''
      break
    }
    case 'header': key = headerValue(req.rawHeaders, c.key.header); break
  }
  if (key === null) return null
  return key.length > 128 ? `#${createHash('sha256').update(key).digest('base64url')}` : key
}

/** A route's limits by name, kept across reloads (buckets and counters survive a policy change). */
export class RateLimitRegistry {
  readonly #byRoute = new Map<string, Map<string, RateLimit>>()
  readonly #global: () => GlobalBuckets | null
  readonly #now: () => number

  constructor (global: () => GlobalBuckets | null, now: () => number) {
    this.#global = global
    this.#now = now
  }

  get (route: string, configs: readonly RateLimitConfig[]): RouteRateLimits | null {
    if (configs.length === 0) {
      this.#byRoute.delete(route)
      return null
    }
    const old = this.#byRoute.get(route) ?? new Map<string, RateLimit>()
    const next = new Map<string, RateLimit>()
    for (const c of configs) {
      const l = old.get(c.name) ?? new RateLimit(c)
      l.config = c
      next.set(c.name, l)
    }
    this.#byRoute.set(route, next)
    return new RouteRateLimits(route, [...next.values()], this.#global(), this.#now)
  }

  retain (routes: ReadonlySet<string>): void {
    for (const name of this.#byRoute.keys()) if (!routes.has(name)) this.#byRoute.delete(name)
  }
}
