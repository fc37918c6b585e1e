/**
 * The Redis idempotency store on a real redis-server (test/helpers/redis.ts):
 * the store contract (test/helpers/store-contract.ts, with real sub-second
 * TTLs and generous margins), then what only a shared store does: two
 * gateway instances (two stores, two connections) racing for one key,
 * waking each other through pub/sub, the poll backstop when pub/sub delivers
 * nothing, binary bodies, key isolation, and Redis crashing, hanging and
 * coming back under a store that is never recreated.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { connectRedis, type RedisConnectionConfig, type RedisHandle, type RedisState } from '../gateway/fleet/redis.js'
import { RedisIdempotencyStore, StoreUnavailableError, type Outcome } from '../gateway/idempotency/index.js'
import { ERRORS } from '../gateway/core/errors.js'
import { startRedis } from './helpers/redis.js'
import { until } from './helpers/load.js'
import { storeContract, response, alive, within } from './helpers/store-contract.js'

/** The contract's TTL cases: real time, so long enough that a busy 2-core box cannot blur 0.6 and 1.2 TTL. */
const TTL = 1500
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

function config (url: string, over: Partial<RedisConnectionConfig> = {}): RedisConnectionConfig {
  return { url, sentinels: null, name: null, cluster: null, keyPrefix: 'gwtest:', password: null, commandTimeoutMs: 1000, connectTimeoutMs: 1000, maxBackoffMs: 200, ...over }
}

/** A handle (= one gateway instance's connection), ready, closed in teardown. */
async function connected (t: Test, url: string, over: Partial<RedisConnectionConfig> = {}, onState?: (s: RedisState, d: string) => void): Promise<RedisHandle> {
  const handle = connectRedis(config(url, over), onState)
  t.teardown(async () => await handle.close())
  await until(() => handle.up, 10_000, 'redis connected')
  return handle
}

let prefixes = 0
function newStore (t: Test, handle: RedisHandle, opts: { keyPrefix?: string, route?: string, ttlMs?: number, pollMs?: number } = {}): RedisIdempotencyStore {
  const store = new RedisIdempotencyStore({
    handle,
    keyPrefix: opts.keyPrefix ?? `t${process.pid}-${++prefixes}:`,
    route: opts.route ?? 'payments',
    ttlMs: opts.ttlMs ?? 60_000,
    ...(opts.pollMs === undefined ? {} : { pollMs: opts.pollMs })
  })
  t.teardown(async () => await store.close())
  return store
}

const owner = (r: { state: string, token?: string }): string => {
  if (r.state !== 'owner' || r.token === undefined) throw new Error(`expected owner, got ${r.state}`)
  return r.token
}

const redis = await startRedis(t)

t.test('the store contract, on Redis', async t => {
  storeContract(t, {
    ttlMs: TTL,
    promptMs: 400,
    async make (t, ttlMs) {
      const handle = await connected(t, redis.url)
      return { store: newStore(t, handle, { ttlMs }), advance: sleep }
    }
  })
})

t.test('two instances on one Redis: of concurrent begins from both, exactly one owns the key', async t => {
  const a = newStore(t, await connected(t, redis.url), { keyPrefix: 'race:' })
  const b = newStore(t, await connected(t, redis.url), { keyPrefix: 'race:' })
  for (let round = 0; round < 5; round++) {
    const key = `k${round}`
    const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await (i % 2 === 0 ? a : b).begin(key, 'fp')))
    t.equal(results.filter(r => r.state === 'owner').length, 1, `round ${round}: one owner`)
    t.equal(results.filter(r => r.state === 'in-flight').length, 19, `round ${round}: everybody else sees it in flight`)
  }
  const token = owner(await a.begin('shared', 'fp'))
  t.same(await b.begin('shared', 'fp'), { state: 'in-flight' }, 'B sees A\'s claim')
  t.same(await b.begin('shared', 'fp2'), { state: 'mismatch' })
  await b.complete('shared', response(200), 'fp.stale-token')
  t.same(await a.begin('shared', 'fp'), { state: 'in-flight' }, 'B cannot complete with a token that is not the owner\'s')
  await a.complete('shared', response(200), token)
  t.same(await b.begin('shared', 'fp'), { state: 'done', outcome: response(200) }, 'B replays what A stored')
})

t.test('a waiter on instance B is woken by complete() on instance A through pub/sub, well before a poll', async t => {
  const a = newStore(t, await connected(t, redis.url), { keyPrefix: 'wake:', pollMs: 5000 })
  const b = newStore(t, await connected(t, redis.url), { keyPrefix: 'wake:', pollMs: 5000 })
  for (const round of [1, 2, 3]) {
    const key = `k${round}`
    const token = owner(await a.begin(key, 'fp'))
    const waiter = b.wait(key, 20_000)
    t.equal(await within(waiter, 300), 'pending', `round ${round}: B waits`)
    const outcome = response(200, `round ${round}`)
    const started = performance.now()
    await a.complete(key, outcome, token)
    const got = await within(waiter, 2000)
    const elapsed = performance.now() - started
    t.same(got, outcome, `round ${round}: B got A's outcome`)
    t.ok(elapsed < 2000, `round ${round}: in ${elapsed.toFixed(1)} ms (the poll would take up to 5000 ms)`)
  }
  owner(await a.begin('rel', 'fp'))
  const waiter = b.wait('rel', 20_000)
  t.equal(await within(waiter, 300), 'pending')
  await a.release('rel')
  t.equal(await within(waiter, 2000), 'released', 'release() on A wakes B as fast')
})

t.test('the poll finds the outcome when pub/sub delivers nothing', async t => {
  const a = newStore(t, await connected(t, redis.url), { keyPrefix: 'poll:' })
  const handleB = await connected(t, redis.url)
  // B's subscriber is gone for good: no message can reach B.
  handleB.subscriber().disconnect()
  const b = newStore(t, handleB, { keyPrefix: 'poll:', pollMs: 100 })
  const token = owner(await a.begin('k', 'fp'))
  const waiter = b.wait('k', 20_000)
  t.equal(await within(waiter, 300), 'pending')
  const outcome = response(201)
  await a.complete('k', outcome, token)
  t.same(await within(waiter, 3000), outcome, 'found by the poll (every 100 ms)')

  owner(await a.begin('gone', 'fp'))
  const released = b.wait('gone', 20_000)
  t.equal(await within(released, 300), 'pending')
  await a.release('gone')
  t.equal(await within(released, 3000), 'released')

  // Released and claimed again between two polls: the key is in flight again, but
  // under another owner, so the first owner is gone and the waiter must hear it.
  const first = owner(await a.begin('reclaimed', 'fp'))
  const reclaimed = b.wait('reclaimed', 20_000)
  t.equal(await within(reclaimed, 300), 'pending')
  await a.release('reclaimed', first)
  owner(await a.begin('reclaimed', 'fp'))
  t.equal(await within(reclaimed, 3000), 'released', 'a new owner\'s token tells the poll that the first owner released')

  await t.test('control: without the poll (pollMs 20 s) the same waiter is still pending', async t => {
    const slow = newStore(t, handleB, { keyPrefix: 'poll:', pollMs: 20_000 })
    const token = owner(await a.begin('control', 'fp'))
    const w = slow.wait('control', 20_000)
    t.equal(await within(w, 300), 'pending')
    await a.complete('control', response(200), token)
    t.equal(await within(w, 1000), 'pending', 'no message and no poll: nothing wakes it')
    await slow.close()
    t.equal(await w, 'released')
  })
})

t.test('a crashed owner: its waiters learn that the claim expired (nothing is published; the poll sees it)', async t => {
  const a = newStore(t, await connected(t, redis.url), { keyPrefix: 'crash:', ttlMs: 500 })
  const b = newStore(t, await connected(t, redis.url), { keyPrefix: 'crash:', ttlMs: 500, pollMs: 100 })
  await a.begin('k', 'fp')
  const started = performance.now()
  t.equal(await alive(b.wait('k', 20_000)), 'released')
  const elapsed = performance.now() - started
  t.ok(elapsed >= 300 && elapsed < 5000, `released once the in-flight TTL (500 ms) passed: ${elapsed.toFixed(0)} ms`)
  t.match(await b.begin('k', 'fp'), { state: 'owner' })
})

t.test('binary bodies round-trip byte for byte (begin replay and wait)', async t => {
  const a = newStore(t, await connected(t, redis.url), { keyPrefix: 'bin:' })
  const b = newStore(t, await connected(t, redis.url), { keyPrefix: 'bin:' })
  const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const invalidUtf8 = Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0xff, 0xfe, 0x00, 0x0d, 0x0a])
  const big = Buffer.alloc(1024 * 1024 + 7)
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919 + (i >> 8)) & 0xff
  for (const [name, body] of [['all 256 byte values', every], ['invalid UTF-8, NUL, CRLF', invalidUtf8], ['1 MiB + 7', big], ['empty', Buffer.alloc(0)]] as const) {
    const token = owner(await a.begin(name, 'fp'))
    const waiter = b.wait(name, 20_000)
    await a.complete(name, response(200, body, [['content-type', 'application/octet-stream']]), token)
    const replay = await b.begin(name, 'fp')
    const waited = await alive(waiter)
    const replayed = replay.state === 'done' && replay.outcome.kind === 'response' ? replay.outcome.response.body : null
    const got = typeof waited === 'object' && waited.kind === 'response' ? waited.response.body : null
    t.ok(replayed !== null && Buffer.isBuffer(replayed) && replayed.equals(body), `${name}: begin replays the exact bytes`)
    t.ok(got !== null && got.equals(body), `${name}: wait returns the exact bytes`)
  }
})

t.test('keys are isolated by keyPrefix and route, and laid out as <prefix>idem:{<route>:<key>}', async t => {
  const handle = await connected(t, redis.url)
  const stores = [
    newStore(t, handle, { keyPrefix: 'iso-a:', route: 'r1' }),
    newStore(t, handle, { keyPrefix: 'iso-a:', route: 'r2' }),
    newStore(t, handle, { keyPrefix: 'iso-b:', route: 'r1' })
  ]
  const tokens: string[] = []
  for (const s of stores) tokens.push(owner(await s.begin('same-key', 'fp')))
  t.pass('each prefix/route pair owns its own same-key')
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  t.same((await raw.keys('iso-*')).sort(), ['iso-a:idem:{r1:same-key}', 'iso-a:idem:{r2:same-key}', 'iso-b:idem:{r1:same-key}'])
  t.equal(stores[0]!.redisKey('same-key'), 'iso-a:idem:{r1:same-key}')
  const pttl = await raw.pttl('iso-a:idem:{r1:same-key}')
  t.ok(pttl > 50_000 && pttl <= 60_000, `the claim carries the TTL (${pttl} ms)`)

  const waiters = [stores[1]!.wait('same-key', 20_000), stores[2]!.wait('same-key', 20_000)]
  await stores[0]!.complete('same-key', response(200), tokens[0])
  t.equal(await within(waiters[0]!, 600), 'pending', 'completing iso-a/r1 does not wake iso-a/r2')
  t.equal(await within(waiters[1]!, 10), 'pending', 'nor iso-b/r1')
  t.same(await stores[1]!.begin('same-key', 'fp'), { state: 'in-flight' })
  t.same(await stores[2]!.begin('same-key', 'fp'), { state: 'in-flight' })
  await stores[1]!.release('same-key', tokens[1])
  await stores[2]!.release('same-key', tokens[2])
  t.same(await Promise.all(waiters), ['released', 'released'])
  t.throws(() => newStore(t, handle, { route: 'a:b' }), RangeError, 'a route with ":" could collide with another route\'s keys')
  t.throws(() => newStore(t, handle, { route: 'a{b}' }), RangeError)
  t.throws(() => newStore(t, handle, { ttlMs: 0 }), RangeError)
  t.throws(() => newStore(t, handle, { pollMs: 0 }), RangeError)
})

t.test('wait timers are unref\'d and cleared once settled', async t => {
  const a = newStore(t, await connected(t, redis.url), { keyPrefix: 'timers:' })
  await a.begin('warm', 'fp')
  t.equal(await within(a.wait('warm', 20_000), 300), 'pending', 'subscribed and polling')
  const realSet = globalThis.setTimeout
  const realClear = globalThis.clearTimeout
  const cleared = new Set<unknown>()
  globalThis.clearTimeout = ((timer: NodeJS.Timeout | undefined) => {
    cleared.add(timer)
    realClear(timer)
  }) as typeof clearTimeout
  t.teardown(() => { globalThis.clearTimeout = realClear })
  const token = owner(await a.begin('k', 'fp'))
  const made: Array<{ timer: NodeJS.Timeout, ms: unknown }> = []
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    const timer = realSet(...args)
    made.push({ timer, ms: args[1] })
    return timer
  }) as typeof setTimeout
  let waiters: Array<Promise<unknown>>
  try {
    // Only what wait() does synchronously: the waiter's own timer.
    waiters = Array.from({ length: 5 }, async () => await a.wait('k', 60_000))
  } finally {
    globalThis.setTimeout = realSet
  }
  // (The driver's own command timeout timer may be among them: only the 60 s ones are the waiters'.)
  const created = made.filter(m => m.ms === 60_000).map(m => m.timer)
  t.equal(created.length, 5, 'one timer per waiter')
  t.ok(created.every(timer => !timer.hasRef()), 'no wait timer keeps the process alive')
  await a.complete('k', response(200), token)
  await alive(Promise.all(waiters))
  t.ok(created.every(timer => cleared.has(timer)), 'every waiter timer was cleared on completion')
})

t.test('Redis killed: every operation rejects with StoreUnavailableError at once; back: the same store works again', async t => {
  const own = await startRedis(t)
  const states: Array<[RedisState, string]> = []
  const handleA = await connected(t, own.url, { commandTimeoutMs: 500, maxBackoffMs: 100 }, (s, d) => states.push([s, d]))
  const handleB = await connected(t, own.url, { commandTimeoutMs: 500, maxBackoffMs: 100 })
  const a = newStore(t, handleA, { keyPrefix: 'down:', pollMs: 5000 })
  const b = newStore(t, handleB, { keyPrefix: 'down:', pollMs: 200 })
  const stored = owner(await a.begin('before', 'fp'))
  const pending = b.wait('before', 60_000)
  t.equal(await within(pending, 300), 'pending')
  const pendingRejects = pending.then(() => 'resolved', (err: unknown) => err)

  await own.stop()
  await until(() => !handleA.up, 5000, 'the handle notices')
  const ops: Array<[string, () => Promise<unknown>]> = [
    ['begin', async () => await a.begin('k', 'fp')],
    ['complete', async () => await a.complete('before', response(200), stored)],
    ['release', async () => await a.release('before', stored)],
    ['wait', async () => await a.wait('before', 60_000)]
  ]
  for (const [name, op] of ops) {
    const started = performance.now()
    const err = await op().then(() => null, (e: unknown) => e)
    const elapsed = performance.now() - started
    t.type(err, StoreUnavailableError, `${name} rejects with StoreUnavailableError`)
    t.ok(elapsed < 2000, `${name} answered in ${elapsed.toFixed(0)} ms`)
    if (err instanceof StoreUnavailableError) {
      t.equal(err.code, 'GW_ERR_IDEMPOTENCY_STORE_UNAVAILABLE')
      t.equal(err.spec, ERRORS.IDEMPOTENCY_STORE_UNAVAILABLE)
      t.equal(err.spec.status, 503)
      t.notMatch(err.message, /127\.0\.0\.1|:\d{4,5}\b/, `${name}: no address in "${err.message}"`)
    }
  }
  const failedWait = await within(pendingRejects, 3000)
  t.type(failedWait, StoreUnavailableError, 'a wait already pending rejects too (its poll failed), it does not hang')
  t.match(states.at(-1), ['down', String], 'onState heard the loss')

  await own.start()
  await until(() => handleA.up && handleB.up, 10_000, 'reconnected')
  t.match(states.at(-1), ['up', String], 'onState heard the reconnect')
  const token = owner(await a.begin('after', 'fp'))
  t.same(await b.begin('after', 'fp'), { state: 'in-flight' }, 'both instances share state again')
  // The subscriber reconnects on its own schedule; give it a moment, then pub/sub must wake B fast (A polls every 5 s).
  await until(() => handleA.subscriber().status === 'ready' && handleB.subscriber().status === 'ready', 10_000, 'subscribers reconnected')
  await sleep(200)
  const waiter = a.wait('after', 20_000)
  t.equal(await within(waiter, 300), 'pending')
  await b.complete('after', response(200, 'after the restart'), token)
  t.same(await within(waiter, 2000), response(200, 'after the restart'), 'pub/sub works again after the reconnect')
  t.notOk(states.some(([, d]) => /127\.0\.0\.1|:\d{4,5}\b/.test(d)), `no address in any onState detail: ${JSON.stringify(states)}`)
})

t.test('Redis hung (SIGSTOP): begin rejects after about commandTimeout, never hangs', async t => {
  const own = await startRedis(t)
  const handle = await connected(t, own.url, { commandTimeoutMs: 300 })
  const s = newStore(t, handle, { keyPrefix: 'hung:' })
  t.match(await s.begin('warm', 'fp'), { state: 'owner' })
  own.pause()
  t.teardown(() => own.resume())
  for (const [name, op] of [
    ['begin', async () => await s.begin('k', 'fp')],
    ['complete', async () => await s.complete('warm', response(200))],
    ['wait', async () => await s.wait('warm', 60_000)]
  ] as const) {
    const started = performance.now()
    const err = await op().then(() => null, (e: unknown) => e)
    const elapsed = performance.now() - started
    t.type(err, StoreUnavailableError, `${name} rejects`)
    t.match(err instanceof StoreUnavailableError ? err.detail : '', /timed out/, `${name}: the detail says it timed out`)
    t.ok(elapsed >= 250 && elapsed < 2000, `${name} gave up after ${elapsed.toFixed(0)} ms (commandTimeout 300 ms)`)
  }
  own.resume()
  await until(() => handle.up, 10_000, 'answers again')
  const outcome: Outcome = { kind: 'unknown', code: 'GW_ERR_UPSTREAM_TIMEOUT', detail: 'after the pause' }
  await s.complete('warm', outcome)
  t.same(await s.begin('warm', 'fp'), { state: 'done', outcome }, 'the same store works once Redis answers again')
})

t.test('a stored outcome someone else wrote wrong (another version, a hand edit, an attacker with Redis access) is "store unavailable", never replayed and never thrown raw', async t => {
  const handle = await connected(t, redis.url)
  const store = newStore(t, handle)
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  const good = { st: 'd', fp: 'fp', kind: 'response', status: '200', headers: '[["content-type","text/plain"]]', body: 'ok' }
  await raw.hset(store.redisKey('good'), good)
  t.same(await store.begin('good', 'fp'), { state: 'done', outcome: { kind: 'response', response: { status: 200, headers: [['content-type', 'text/plain']], body: Buffer.from('ok') } } }, 'the same fields written well: replayed')
  const bad: Array<[string, Record<string, string>]> = [
    ['status not a number', { status: 'abc' }],
    ['status out of range', { status: '1000' }],
    ['an interim status', { status: '100' }],
    ['headers not JSON', { headers: 'not json' }],
    ['headers not pairs', { headers: '[["content-type"]]' }],
    ['a header name node:http refuses', { headers: '[["bad name","v"]]' }],
    ['a header value with a line break (response splitting)', { headers: '[["x-a","v\\r\\nset-cookie: s=1"]]' }],
    ['an unknown kind', { kind: 'other' }]
  ]
  for (const [what, over] of bad) {
    const key = `bad-${what.replace(/\W+/g, '-')}`
    await raw.hset(store.redisKey(key), { ...good, ...over })
    await t.rejects(store.begin(key, 'fp'), StoreUnavailableError, `${what}: store unavailable`)
  }
  await raw.hset(store.redisKey('no-body'), { st: 'd', fp: 'fp', kind: 'response', status: '200', headers: '[]' })
  await t.rejects(store.begin('no-body', 'fp'), StoreUnavailableError, 'no body field: store unavailable')
})
