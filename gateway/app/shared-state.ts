/**
 * Shared state as the policy's store block says: the memory store (this
 * process alone), or Redis — the idempotency stores of every route and the
 * fleet bus for shift decisions on one connection pair. Composition only:
 * the pieces live in idempotency/ and fleet/.
 */
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Clock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { StoreConfig } from '../policy/snapshot.js'
import type { StoreFactory } from '../delivery/route-delivery.js'
import { MemoryIdempotencyStore } from '../idempotency/memory-store.js'
import { RedisIdempotencyStore } from '../idempotency/redis-store.js'
import { GuardedStore } from '../idempotency/guarded-store.js'
import { connectRedis } from '../fleet/redis.js'
import { RedisBus } from '../fleet/redis-bus.js'
import { ShareSync } from '../fleet/share-sync.js'
import type { FleetBus } from '../fleet/bus.js'
import { RedisBuckets } from '../ratelimit/redis.js'
import type { GlobalBuckets } from '../ratelimit/route-limits.js'

export interface SharedState {
  readonly kind: 'memory' | 'redis'
  readonly instance: string
  readonly storeFactory: StoreFactory
  /** Null when this process decides alone. */
  readonly fleet: ShareSync | null
  /** Where global rate limits are counted (Redis); null: each process counts its own. */
  readonly globalBuckets: GlobalBuckets | null
  /** Redis connected now (always true for memory). */
  up (): boolean
  /** Resolves when connected, or after `ms` (start-up goes on degraded rather than not at all). */
  ready (ms: number): Promise<boolean>
  close (): Promise<void>
}

export function newInstanceId (): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
}

export function memoryState (clock: Clock, instance: string): SharedState {
  return {
    kind: 'memory',
    instance,
    storeFactory: (_route, cfg) => new MemoryIdempotencyStore({ clock, ttlMs: cfg.ttlMs, maxKeys: cfg.maxKeys }),
    fleet: null,
    globalBuckets: null,
    up: () => true,
    ready: async () => true,
    close: async () => {}
  }
}

export function createSharedState (store: StoreConfig, clock: Clock, logger: Logger, instance = newInstanceId()): SharedState {
  const r = store.redis
  if (r === null) return memoryState(clock, instance)
  // The policy's redis block is the connection config as it is.
  const h = connectRedis(r, (state, detail) => {
    if (state === 'down') logger.warn({ code: 'GW_ERR_IDEMPOTENCY_STORE_UNAVAILABLE', detail }, 'redis unavailable: routing on local state; keyed requests follow idempotency.storeUnavailable')
    else logger.info({ detail }, 'redis connected: shared state resumed')
  })
  const bus: FleetBus = new RedisBus(h, r.keyPrefix)
  const fleet = new ShareSync({ instance, bus, now: () => clock.now(), syncIntervalMs: store.syncIntervalMs, staleAfterMs: store.staleAfterMs })
  return {
    kind: 'redis',
    instance,
    storeFactory: (route, cfg) => new GuardedStore(
      new RedisIdempotencyStore({ handle: h, keyPrefix: r.keyPrefix, route, ttlMs: cfg.ttlMs }),
      cfg.storeUnavailable === 'local' ? new MemoryIdempotencyStore({ clock, ttlMs: cfg.ttlMs, maxKeys: cfg.maxKeys }) : null,
      n => logger.error({ dropped: n }, 'idempotency outbox full while redis is away; oldest outcome dropped')),
    fleet,
    globalBuckets: { buckets: new RedisBuckets(h.client), keyPrefix: r.keyPrefix, up: () => h.up },
    up: () => h.up,
    ready: async (ms: number) => {
      const end = clock.now() + ms
      while (!h.up && clock.now() < end) await new Promise(resolve => setTimeout(resolve, 10))
      return h.up
    },
    close: async () => {
      await bus.close()
      await h.close()
    }
  }
}
