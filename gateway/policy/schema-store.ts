/**
 * Where shared state lives: in this process (the default, no set-up) or on
 * Redis, which makes every gateway instance pointed at it one fleet
 * (idempotency keys honoured across instances, shift decisions shared).
 */
import { Type } from '@sinclair/typebox'
import { strict, Duration } from './schema-kit.js'

const HostPort = Type.String({
  pattern: '^[A-Za-z0-9.\\-]+:[0-9]{1,5}$|^\\[[0-9A-Fa-f:.]+\\]:[0-9]{1,5}$',
  description: 'host:port of a Redis node.',
  'x-hint': 'write host:port, e.g. 10.0.0.7:26379'
})

export const RedisSchema = strict({
  url: Type.Optional(Type.String({
    pattern: '^rediss?://[^\\s@/?#]+(/[0-9]{1,2})?$',
    description: 'One Redis server: redis://host:port[/db] (rediss:// for TLS). No credentials in the file: use passwordEnv.',
    'x-hint': 'write redis://host:6379 without user or password (give the password with passwordEnv)'
  })),
  sentinels: Type.Optional(Type.Array(HostPort, { minItems: 1, description: 'Redis Sentinel nodes; with name, the gateway follows the master Sentinel elects.' })),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'The Sentinel master set name (with sentinels).' })),
  cluster: Type.Optional(Type.Array(HostPort, { minItems: 1, description: 'Redis Cluster seed nodes; the rest of the cluster is discovered.' })),
  passwordEnv: Type.Optional(Type.String({
    pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
    description: 'Name of an environment variable holding the Redis password (AUTH). The password itself never goes in the file.',
    'x-hint': 'give the NAME of an environment variable, e.g. GATEWAY_REDIS_PASSWORD'
  })),
  keyPrefix: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9:_.-]{1,64}$', description: 'Prefix of every key and channel the gateway uses, so several fleets can share one Redis. @default gw:' })),
  commandTimeout: Type.Optional(Duration('Longest wait for one Redis command; a slower answer counts as Redis unavailable (the request path never waits longer).', '250ms')),
  connectTimeout: Type.Optional(Duration('Longest wait to (re)connect.', '1s')),
  maxBackoff: Type.Optional(Duration('Cap of the reconnect backoff (exponential, full jitter; reconnects forever).', '2s'))
}, { description: 'Redis connection. Give exactly one of url, sentinels + name, or cluster.' })

export const StoreSchema = strict({
  redis: Type.Optional(RedisSchema),
  fleet: Type.Optional(strict({
    syncInterval: Type.Optional(Duration('How often each instance publishes its per-route shares and signals.', '100ms')),
    staleAfter: Type.Optional(Duration('A peer not heard from for this long no longer counts in the merge.', '1500ms'))
  }, { description: 'Fleet-wide self-healing: how instances share shift decisions.' }))
}, { description: 'Shared state. Absent = in this process only (with --workers, held by the primary process for all workers). With redis, every instance on the same Redis and keyPrefix is one fleet. Bound at start-up (a reload cannot change it).' })
