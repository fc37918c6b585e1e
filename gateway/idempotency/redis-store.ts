/**
 * The Redis idempotency store: the same contract as memory-store.ts, shared
 * by every gateway instance connected to one Redis.
 *
 * One hash per key, `${keyPrefix}idem:{${route}:${key}}`:
 *   st      'i' (in flight) or 'd' (done)
 *   fp      the fingerprint (absent on a done key completed without a claim: replayed to anyone)
 *   tok     the owner's fencing token (in flight only)
 *   kind    'response' | 'unknown', then status, headers (JSON), body (raw bytes)
 *           or code, detail
 * Its PEXPIRE is ttlMs from begin while in flight (a crashed owner frees the key)
 * and ttlMs from completion once done.
 *
 * Every operation is one round trip: begin, complete and release are Lua
 * scripts (atomic, run with EVALSHA by ioredis' defineCommand), wait reads
 * with one HGETALL. Each script touches exactly one key, so Redis Cluster can
 * never answer CROSSSLOT; the hash tag `{route:key}` keeps that true if a
 * script ever gains a sibling key. complete and release PUBLISH the Redis key on
 * `${keyPrefix}idem:settled`; waiters listen there (one subscription per
 * store, shared by its waiters) and also re-read every pollMs, the backstop
 * for messages lost while the subscriber reconnects and for in-flight keys
 * that simply expire (an expiry publishes nothing).
 *
 * Fencing token: `${fp}.${nonce}`, the nonce 96 random bits. A counter kept in
 * the key's hash would restart when the key expires or is released and could
 * hand a later owner the very token a stale owner still holds; a counter in a
 * sibling key would need its own TTL with the same flaw. Equality is all the
 * fencing needs, and the fingerprint before the last '.' lets complete()
 * re-store a vanished key under it (like the memory store).
 *
 * No maxKeys: the Redis server's maxmemory and eviction policy bound the
 * store. Use volatile-ttl or volatile-lru (every key here has a TTL), or
 * noeviction, which makes begin fail (StoreUnavailableError, OOM) rather than
 * forget a claim.
 */
import { randomBytes } from 'node:crypto'
import type { Redis, Cluster } from 'ioredis'
import type { RedisHandle } from '../fleet/redis.js'
import { hubFor, type ChannelHub, type ChannelMember } from '../fleet/redis-channels.js'
import { redisErrorDetail } from '../fleet/redis.js'
import { StoreUnavailableError } from './errors.js'
import type { BeginResult, IdempotencyStore, Outcome } from './types.js'

type WaitResult = Outcome | 'released' | 'timeout'

export interface RedisIdempotencyStoreOptions {
  /** A connection owned by the caller (close() leaves it open). */
  readonly handle: RedisHandle
  readonly keyPrefix: string
  /** The route the keys belong to: `[A-Za-z0-9_.-]`, as policy route names are. */
  readonly route: string
  /** How long a completed key is replayed, counted from completion; also the longest a key may stay in flight. */
  readonly ttlMs: number
  /** How often waiters re-read their key, in case a pub/sub message was lost. @default 200 */
  readonly pollMs?: number
}

// ARGV: fp, token, ttlMs. Returns {state} or {'done', kind, status, headers, body, code, detail}.
const BEGIN = `
local k = KEYS[1]
local st = redis.call('HGET', k, 'st')
if not st then
  redis.call('HSET', k, 'st', 'i', 'fp', ARGV[1], 'tok', ARGV[2])
  redis.call('PEXPIRE', k, ARGV[3])
  return {'owner'}
end
local fp = redis.call('HGET', k, 'fp')
if st == 'i' then
  if fp == ARGV[1] then return {'in-flight'} end
  return {'mismatch'}
end
if fp and fp ~= ARGV[1] then return {'mismatch'} end
local o = redis.call('HMGET', k, 'kind', 'status', 'headers', 'body', 'code', 'detail')
return {'done', o[1], o[2], o[3], o[4], o[5], o[6]}
`

// ARGV: fenced ('1'/'0'), token, hasFp ('1'/'0'), fp from the token, ttlMs, channel,
// kind, status, headers, body, code, detail. Returns 1 if stored, 0 if fenced off.
const COMPLETE = `
local k = KEYS[1]
local st = redis.call('HGET', k, 'st')
local fenced = ARGV[1] == '1'
local fp = false
if st == 'i' then
  if fenced and redis.call('HGET', k, 'tok') ~= ARGV[2] then return 0 end
  fp = redis.call('HGET', k, 'fp')
elseif st then
  if fenced then return 0 end
  fp = redis.call('HGET', k, 'fp')
elseif fenced and ARGV[3] == '1' then
  fp = ARGV[4]
end
redis.call('DEL', k)
if fp then redis.call('HSET', k, 'fp', fp) end
if ARGV[7] == 'response' then
  redis.call('HSET', k, 'st', 'd', 'kind', 'response', 'status', ARGV[8], 'headers', ARGV[9], 'body', ARGV[10])
else
  redis.call('HSET', k, 'st', 'd', 'kind', 'unknown', 'code', ARGV[11], 'detail', ARGV[12])
end
redis.call('PEXPIRE', k, ARGV[5])
redis.call('PUBLISH', ARGV[6], k)
return 1
`

// ARGV: fenced ('1'/'0'), token, channel. Returns 1 if deleted (or nothing to delete), 0 if fenced off.
const RELEASE = `
local k = KEYS[1]
if ARGV[1] == '1' then
  local cur = redis.call('HMGET', k, 'st', 'tok')
  if cur[1] ~= 'i' or cur[2] ~= ARGV[2] then return 0 end
end
if redis.call('DEL', k) == 1 then redis.call('PUBLISH', ARGV[3], k) end
return 1
`

type Reply = Buffer | null

/** The commands defineCommand adds (ioredis adds a `…Buffer` variant of each). */
interface IdemClient {
  gwIdemBeginBuffer (key: string, fp: string, token: string, ttlMs: number): Promise<Reply[]>
  gwIdemComplete (key: string, ...args: Array<string | number | Buffer>): Promise<number>
  gwIdemRelease (key: string, fenced: string, token: string, channel: string): Promise<number>
  hgetallBuffer (key: string): Promise<Record<string, Buffer>>
}

/** Defines the scripts once per connection (several stores, one per route, share it). */
function scripted (client: Redis | Cluster): IdemClient {
  const c = client as unknown as IdemClient & Partial<Record<'gwIdemBegin', unknown>>
  if (typeof c.gwIdemBegin !== 'function') {
    client.defineCommand('gwIdemBegin', { numberOfKeys: 1, lua: BEGIN })
    client.defineCommand('gwIdemComplete', { numberOfKeys: 1, lua: COMPLETE })
    client.defineCommand('gwIdemRelease', { numberOfKeys: 1, lua: RELEASE })
  }
  return c
}

type Entry =
  | { readonly state: 'gone' }
  | { readonly state: 'in-flight', readonly tok: string }
  | { readonly state: 'done', readonly outcome: Outcome }

interface Waiter {
  /** The owner's token at the first read; undefined until then. Another token later = released and re-claimed. */
  tok: string | undefined
  /** The timeout passed before the first read answered: that read decides. */
  expired: boolean
  readonly resolve: (result: WaitResult) => void
  readonly reject: (err: Error) => void
  readonly timer: NodeJS.Timeout
}

/** The waiters of one Redis key; one read at a time serves all of them. */
interface Group {
  readonly waiters: Set<Waiter>
  reading: boolean
  /** Something may have changed while a read was out: read again after it. */
  again: boolean
}

export class RedisIdempotencyStore implements IdempotencyStore {
  readonly #handle: RedisHandle
  readonly #client: IdemClient
  readonly #keyPrefix: string
  readonly #route: string
  readonly #ttlMs: number
  readonly #pollMs: number
  readonly #channel: string
  readonly #groups = new Map<string, Group>()
  readonly #member: ChannelMember = {
    onMessage: redisKey => { this.#refresh(redisKey) },
    // Messages sent before the subscription took effect (or while the subscriber
    // was reconnecting) are lost: look at every waited key once more.
    onSubscribed: () => { for (const redisKey of this.#groups.keys()) this.#refresh(redisKey) }
  }

  #poller: NodeJS.Timeout | undefined
  #hub: ChannelHub | undefined
  #closed = false

  constructor (opts: RedisIdempotencyStoreOptions) {
    if (!(opts.ttlMs > 0) || !Number.isFinite(opts.ttlMs)) throw new RangeError(`ttlMs must be > 0, got ${opts.ttlMs}`)
    const pollMs = opts.pollMs ?? 200
    if (!(pollMs > 0) || !Number.isFinite(pollMs)) throw new RangeError(`pollMs must be > 0, got ${pollMs}`)
    // ':' would make route "a:b" + key "c" the same Redis key as route "a" + key "b:c"; braces would move the hash tag.
    if (!/^[A-Za-z0-9_.-]+$/.test(opts.route)) throw new RangeError(`route must match [A-Za-z0-9_.-]+, got ${JSON.stringify(opts.route)}`)
    this.#handle = opts.handle
    this.#client = scripted(opts.handle.client)
    this.#keyPrefix = opts.keyPrefix
    this.#route = opts.route
    this.#ttlMs = Math.ceil(opts.ttlMs)
    this.#pollMs = pollMs
    this.#channel = `${opts.keyPrefix}idem:settled`
  }

  /** The Redis key holding `key` (for tests and operators). */
  redisKey (key: string): string { return `${this.#keyPrefix}idem:{${this.#route}:${key}}` }

  async begin (key: string, fingerprint: string): Promise<BeginResult> {
    const token = `${fingerprint}.${randomBytes(12).toString('base64url')}`
    const reply = await this.#call(async () => await this.#client.gwIdemBeginBuffer(this.redisKey(key), fingerprint, token, this.#ttlMs))
    const state = reply[0]?.toString('latin1')
    if (state === 'owner') return { state: 'owner', token }
    if (state === 'in-flight') return { state: 'in-flight' }
    if (state === 'mismatch') return { state: 'mismatch' }
    if (state === 'done') {
      const [, kind, status, headers, body, code, detail] = reply
      return { state: 'done', outcome: decodeOutcome({ kind, status, headers, body, code, detail }) }
    }
    throw new StoreUnavailableError('unexpected reply from the store', true)
  }

  async complete (key: string, outcome: Outcome, token?: string): Promise<void> {
    const dot = token === undefined ? -1 : token.lastIndexOf('.')
    const fp = token !== undefined && dot >= 0 ? token.slice(0, dot) : ''
    const fields: Array<string | Buffer> = outcome.kind === 'response'
      ? ['response', String(outcome.response.status), JSON.stringify(outcome.response.headers.map(([k, v]) => [k, v])), outcome.response.body, '', '']
      : ['unknown', '', '', '', outcome.code, outcome.detail]
    await this.#call(async () => await this.#client.gwIdemComplete(this.redisKey(key),
      token === undefined ? '0' : '1', token ?? '', dot >= 0 ? '1' : '0', fp, this.#ttlMs, this.#channel, ...fields))
  }

  async release (key: string, token?: string): Promise<void> {
    await this.#call(async () => await this.#client.gwIdemRelease(this.redisKey(key), token === undefined ? '0' : '1', token ?? '', this.#channel))
  }

  /**
   * Reads the key at once; if it is in flight, waits for a message about it
   * (the store subscribes on first use) or for the next poll. Rejects with
   * StoreUnavailableError when a read fails, also one made while waiting.
   */
  async wait (key: string, ms: number): Promise<WaitResult> {
    if (this.#closed) return 'released'
    const redisKey = this.redisKey(key)
    this.#join()
    return await new Promise<WaitResult>((resolve, reject) => {
      const waiter: Waiter = {
        tok: undefined,
        expired: false,
        resolve,
        reject,
        timer: setTimeout(() => {
          // Before the first read answered: that read decides (a done key is still returned).
          if (waiter.tok === undefined) waiter.expired = true
          else this.#settle(redisKey, waiter, 'timeout')
        }, ms)
      }
      // A waiter must never keep the process alive on its own (shutdown would hang).
      waiter.timer.unref()
      let group = this.#groups.get(redisKey)
      if (group === undefined) {
        group = { waiters: new Set(), reading: false, again: false }
        this.#groups.set(redisKey, group)
      }
      group.waiters.add(waiter)
      this.#startPoller()
      this.#refresh(redisKey)
    })
  }

  /** Releases pending waiters and unsubscribes; the handle stays open (its creator owns it). */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#stopPoller()
    for (const [redisKey, group] of this.#groups) {
      for (const waiter of group.waiters) this.#settle(redisKey, waiter, 'released')
    }
    this.#groups.clear()
    this.#hub?.leave(this.#channel, this.#member)
    this.#hub = undefined
  }

  /** Runs one command; any failure becomes a StoreUnavailableError with a safe detail. */
  async #call<T> (run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      throw err instanceof StoreUnavailableError ? err : new StoreUnavailableError(redisErrorDetail(err))
    }
  }

  /** Joins the settled channel (once; retried by the next wait if the handle would not give a subscriber). */
  #join (): void {
    if (this.#hub !== undefined || this.#closed) return
    try {
      this.#hub = hubFor(this.#handle.subscriber())
    } catch {
      return // the handle is closed: polling still finds the outcome
    }
    this.#hub.join(this.#channel, this.#member)
  }

  /** Reads `redisKey` for its waiters; a read already out is followed by one more. */
  #refresh (redisKey: string): void {
    const group = this.#groups.get(redisKey)
    if (group === undefined) return
    if (group.reading) {
      group.again = true
      return
    }
    group.reading = true
    group.again = false
    this.#read(redisKey).then(
      entry => { this.#apply(redisKey, group, entry) },
      (err: Error) => { for (const waiter of group.waiters) this.#settle(redisKey, waiter, err) }
    ).finally(() => {
      group.reading = false
      if (group.waiters.size === 0) {
        if (this.#groups.get(redisKey) === group) this.#groups.delete(redisKey)
        if (this.#groups.size === 0) this.#stopPoller()
      } else if (group.again) this.#refresh(redisKey)
    })
  }

  async #read (redisKey: string): Promise<Entry> {
    const h = await this.#call(async () => await this.#client.hgetallBuffer(redisKey))
    const st = h.st?.toString('latin1')
    if (st === undefined) return { state: 'gone' }
    if (st === 'i') return { state: 'in-flight', tok: h.tok?.toString('utf8') ?? '' }
    return { state: 'done', outcome: decodeOutcome(h) }
  }

  #apply (redisKey: string, group: Group, entry: Entry): void {
    for (const waiter of group.waiters) {
      if (entry.state === 'done') this.#settle(redisKey, waiter, entry.outcome)
      else if (entry.state === 'gone') this.#settle(redisKey, waiter, 'released')
      else if (waiter.tok === undefined) {
        if (waiter.expired) this.#settle(redisKey, waiter, 'timeout')
        else waiter.tok = entry.tok
      } else if (waiter.tok !== entry.tok) {
        // Released and claimed again by another owner since this waiter looked.
        this.#settle(redisKey, waiter, 'released')
      }
    }
  }

  #settle (redisKey: string, waiter: Waiter, result: WaitResult | Error): void {
    clearTimeout(waiter.timer)
    const group = this.#groups.get(redisKey)
    if (group !== undefined) {
      group.waiters.delete(waiter)
      if (group.waiters.size === 0 && !group.reading) {
        this.#groups.delete(redisKey)
        if (this.#groups.size === 0) this.#stopPoller()
      }
    }
    if (result instanceof Error) waiter.reject(result)
    else waiter.resolve(result)
  }

  #startPoller (): void {
    if (this.#poller !== undefined || this.#closed) return
    this.#poller = setInterval(() => {
      for (const redisKey of this.#groups.keys()) this.#refresh(redisKey)
    }, this.#pollMs)
    this.#poller.unref()
  }

  #stopPoller (): void {
    if (this.#poller !== undefined) clearInterval(this.#poller)
    this.#poller = undefined
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

/** A stored outcome back from its hash fields; a malformed one is reported as the store failing, not thrown raw. */
function decodeOutcome (f: Record<string, Reply | undefined>): Outcome {
  const kind = f.kind?.toString('latin1')
  if (kind === 'unknown') {
    return { kind: 'unknown', code: f.code?.toString('utf8') ?? '', detail: f.detail?.toString('utf8') ?? '' }
  }
  const status = Number(f.status?.toString('latin1'))
  let headers: unknown
  try { headers = JSON.parse(f.headers?.toString('utf8') ?? '') } catch { headers = null }
  // What Redis holds is data from the network too: a replay must be a response node:http can send.
  const wellFormed = Array.isArray(headers) && headers.every(h => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string' && TOKEN.test(h[0]) && FIELD_VALUE.test(h[1]))
  if (kind !== 'response' || !Number.isInteger(status) || status < 200 || status > 599 || !wellFormed || f.body == null) {
    throw new StoreUnavailableError('a stored outcome could not be read', true)
  }
  // A copy: the reply may be a view into a larger socket buffer.
  return { kind: 'response', response: { status, headers: headers as Array<[string, string]>, body: Buffer.from(f.body) } }
}
