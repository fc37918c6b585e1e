/**
 * Global rate-limit state on Redis: the GCRA of gcra.ts as one Lua script
 * on one key (atomic, one round trip, Cluster-safe), on Redis's own clock
 * (TIME) so every instance of the fleet judges by the same time. The key
 * expires when its bucket would be full again.
 */
import type { Redis, Cluster } from 'ioredis'

const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local period = window / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + period
if tat - now > window - period then
  return {0, 0, tostring(nxt - now - window), tostring(tat - now)}
end
redis.call('SET', KEYS[1], tostring(nxt), 'PX', math.max(1, math.ceil(nxt - now)))
return {1, math.floor((window - (nxt - now)) / period + 1e-9), '0', tostring(nxt - now)}
`

interface ScriptedClient {
  gwRateGcra (key: string, limit: number, windowMs: number): Promise<[number, number, string, string]>
}

export interface RemoteVerdict {
  readonly allowed: boolean
  readonly remaining: number
  readonly retryAfterMs: number
  readonly resetMs: number
}

export class RedisBuckets {
  readonly #client: ScriptedClient

  constructor (client: Redis | Cluster) {
    const c = client as unknown as ScriptedClient & Partial<Record<'gwRateGcra', unknown>>
    if (typeof c.gwRateGcra !== 'function') client.defineCommand('gwRateGcra', { numberOfKeys: 1, lua: SCRIPT })
    this.#client = c
  }

  async take (key: string, limit: number, windowMs: number): Promise<RemoteVerdict> {
    const [ok, remaining, retry, reset] = await this.#client.gwRateGcra(key, limit, windowMs)
    return { allowed: ok === 1, remaining, retryAfterMs: Number(retry), resetMs: Number(reset) }
  }
}
