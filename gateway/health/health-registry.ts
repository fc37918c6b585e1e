/**
 * Owns the UpstreamHealth of every route/upstream across reloads, their
 * breakers (rebuilt only when the route's breaker settings change), and one
 * bucket-rotation timer per distinct breaker bucket width shared by all
 * breakers of that width.
 */
import { EventEmitter } from 'node:events'
import type { BreakerConfig } from '../policy/snapshot.js'
import type { EventSink } from '../events/log.js'
import { Breaker } from './breaker.js'
import { UpstreamHealth } from './upstream-health.js'

interface Rotator { readonly emitter: EventEmitter, readonly timer: NodeJS.Timeout }

export class HealthRegistry {
  readonly #health = new Map<string, UpstreamHealth>()
  readonly #breakerKeys = new Map<string, string>()
  readonly #rotators = new Map<number, Rotator>()
  readonly #emit: EventSink

  constructor (emit: EventSink) {
    this.#emit = emit
  }

  get (route: string, upstream: string): UpstreamHealth {
    const key = `${route}/${upstream}`
    let h = this.#health.get(key)
    if (h === undefined) {
      h = new UpstreamHealth(route, upstream)
      this.#health.set(key, h)
    }
    return h
  }

  /** Gives `h` a breaker for `config` (or none), keeping the existing one when the settings are unchanged. */
  useBreaker (h: UpstreamHealth, config: BreakerConfig | null): void {
    const key = `${h.route}/${h.upstream}`
    const sig = config === null ? '' : JSON.stringify({ ...config, failOn: [...config.failOn], failOnStatus: [...config.failOnStatus] })
    if (this.#breakerKeys.get(key) === sig) return
    h.breaker?.shutdown()
    h.breaker = config === null ? null : new Breaker(h.route, h.upstream, config, this.#emit, this.#rotator(config.windowMs / 10))
    this.#breakerKeys.set(key, sig)
  }

  /** Drops health (and shuts breakers) of upstreams no longer in the policy. */
  retain (keys: ReadonlySet<string>): void {
    for (const [key, h] of this.#health) {
      if (keys.has(key)) continue
      h.breaker?.shutdown()
      this.#health.delete(key)
      this.#breakerKeys.delete(key)
    }
  }

  all (): IterableIterator<UpstreamHealth> {
    return this.#health.values()
  }

  close (): void {
    for (const h of this.#health.values()) h.breaker?.shutdown()
    for (const r of this.#rotators.values()) clearInterval(r.timer)
    this.#rotators.clear()
  }

  #rotator (bucketMs: number): EventEmitter {
    const ms = Math.max(10, Math.round(bucketMs))
    let r = this.#rotators.get(ms)
    if (r === undefined) {
      const emitter = new EventEmitter()
      emitter.setMaxListeners(0)
      const timer = setInterval(() => emitter.emit('rotate'), ms)
      timer.unref()
      r = { emitter, timer }
      this.#rotators.set(ms, r)
    }
    return r.emitter
  }
}
