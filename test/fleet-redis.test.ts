/**
 * The Redis connection factory (gateway/fleet/redis.ts): config validation,
 * the reconnect backoff, errors that never crash the process nor leak an
 * address or a password, the lazily made subscriber, and the three
 * topologies on real servers: a standalone URL, a Sentinel-managed master,
 * and a (one-node) Redis Cluster, each carrying the idempotency store.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { connectRedis, backoffDelay, validateRedisConfig, redisErrorDetail, type RedisConnectionConfig, type RedisHandle, type RedisState } from '../gateway/fleet/redis.js'
import { RedisIdempotencyStore, StoreUnavailableError } from '../gateway/idempotency/index.js'
import { startRedis, startSentinel } from './helpers/redis.js'
import { closedPort } from './helpers/net.js'
import { until } from './helpers/load.js'
import { response } from './helpers/store-contract.js'

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

const base: RedisConnectionConfig = { url: null, sentinels: null, name: null, cluster: null, keyPrefix: 'gw:', password: null, commandTimeoutMs: 1000, connectTimeoutMs: 1000, maxBackoffMs: 200 }

function open (t: Test, cfg: Partial<RedisConnectionConfig>, onState?: (s: RedisState, d: string) => void): RedisHandle {
  const handle = connectRedis({ ...base, ...cfg }, onState)
  t.teardown(async () => await handle.close())
  return handle
}

/** begin/complete/replay and a pub/sub wake-up across two handles: the store really works on this topology. */
async function storeWorks (t: Test, a: RedisHandle, b: RedisHandle, keyPrefix: string): Promise<void> {
  const sa = new RedisIdempotencyStore({ handle: a, keyPrefix, route: 'r', ttlMs: 60_000, pollMs: 10_000 })
  const sb = new RedisIdempotencyStore({ handle: b, keyPrefix, route: 'r', ttlMs: 60_000, pollMs: 10_000 })
  t.teardown(async () => { await sa.close(); await sb.close() })
  const r = await sa.begin('k', 'fp')
  t.equal(r.state, 'owner')
  t.same(await sb.begin('k', 'fp'), { state: 'in-flight' })
  const waiter = sb.wait('k', 20_000)
  await sleep(300) // the subscriber connects and subscribes
  const started = performance.now()
  await sa.complete('k', response(200, 'via this topology'), r.state === 'owner' ? r.token : undefined)
  t.same(await waiter, response(200, 'via this topology'))
  t.ok(performance.now() - started < 3000, 'woken through pub/sub (the poll is 10 s)')
}

t.test('config: exactly one of url, sentinels + name, cluster; positive timeouts', async t => {
  const ok = (over: Partial<RedisConnectionConfig>): void => { validateRedisConfig({ ...base, ...over }) }
  t.doesNotThrow(() => ok({ url: 'redis://127.0.0.1:6379' }))
  t.doesNotThrow(() => ok({ url: 'rediss://user:pw@redis.example:6380/2' }))
  t.doesNotThrow(() => ok({ sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster' }))
  t.doesNotThrow(() => ok({ cluster: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }] }))
  t.throws(() => ok({}), RangeError, 'none')
  t.throws(() => ok({ url: 'redis://a:1', cluster: [{ host: 'n1', port: 7000 }] }), RangeError, 'two')
  t.throws(() => ok({ sentinels: [{ host: 's1', port: 26379 }] }), RangeError, 'sentinels without a name')
  t.throws(() => ok({ url: 'redis://a:1', name: 'mymaster' }), RangeError, 'a name without sentinels')
  t.throws(() => ok({ cluster: [] }), RangeError, 'no nodes')
  t.throws(() => ok({ cluster: [{ host: 'n1', port: 0 }] }), RangeError, 'bad port')
  t.throws(() => ok({ url: 'redis://a:1', commandTimeoutMs: 0 }), RangeError)
  t.throws(() => ok({ url: 'redis://a:1', connectTimeoutMs: -1 }), RangeError)
  t.throws(() => ok({ url: 'redis://a:1', maxBackoffMs: NaN }), RangeError)
  const secret = 'hunter2-secret'
  for (const url of [`http://u:${secret}@h:1`, `redis://u:${secret}@[bad`, `redis://u:${secret}@h:1 x`]) {
    try {
      ok({ url })
      t.fail(`${url.replace(secret, '***')} accepted`)
    } catch (err) {
      t.type(err, RangeError)
      t.notMatch(String((err as Error).message) + JSON.stringify(err), secret, 'the error never repeats the URL or its password')
    }
  }
  t.throws(() => connectRedis({ ...base }), RangeError, 'connectRedis validates too')
})

t.test('backoff: capped exponential with full jitter, always a number (reconnect forever)', async t => {
  t.equal(backoffDelay(1, 10_000, () => 0.999999), 49, 'attempt 1: below 50 ms')
  t.equal(backoffDelay(2, 10_000, () => 0.999999), 99, 'attempt 2: below 100 ms')
  t.equal(backoffDelay(5, 10_000, () => 0.999999), 799)
  t.equal(backoffDelay(30, 2000, () => 0.999999), 1999, 'capped at maxBackoffMs')
  t.equal(backoffDelay(1_000_000, 2000, () => 0.999999), 1999, 'huge attempt counts stay capped (no Infinity)')
  t.equal(backoffDelay(10, 2000, () => 0), 1, 'full jitter reaches down to (almost) zero, never 0')
  const seen = new Set<number>()
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(20, 1000)
    t.ok(Number.isInteger(d) && d >= 1 && d <= 1000, `in range: ${d}`)
    seen.add(d)
  }
  t.ok(seen.size > 50, 'jittered: many different delays')
})

t.test('error details are safe: codes and fixed phrases, never an address', async t => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:6379'), { code: 'ECONNREFUSED' })
  t.equal(redisErrorDetail(refused), 'connection failed (ECONNREFUSED)')
  t.equal(redisErrorDetail(new Error('Command timed out')), 'the command timed out')
  t.equal(redisErrorDetail(new Error("Stream isn't writeable and enableOfflineQueue options is false")), 'not connected')
  const moved = Object.assign(new Error('MOVED 3999 10.1.2.3:6381'), { name: 'ReplyError' })
  t.equal(redisErrorDetail(moved), 'the server replied MOVED')
  const oom = Object.assign(new Error("OOM command not allowed when used memory > 'maxmemory'."), { name: 'ReplyError' })
  t.equal(redisErrorDetail(oom), 'the server replied OOM')
  t.equal(redisErrorDetail(new Error('something with 10.1.2.3:6379 in it')), 'unexpected error')
  t.equal(redisErrorDetail('a string'), 'unexpected error')
})

t.test('a server that refuses: onState says down, commands fail fast and safely, nothing crashes', async t => {
  const port = await closedPort()
  const secret = 'hunter2-secret'
  const states: Array<[RedisState, string]> = []
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown): void => { uncaught.push(err) }
  process.on('uncaughtException', onUncaught)
  t.teardown(() => { process.removeListener('uncaughtException', onUncaught) })
  const handle = open(t, { url: `redis://gw:${secret}@127.0.0.1:${port}`, password: secret, maxBackoffMs: 50 }, (s, d) => states.push([s, d]))
  await until(() => states.length > 0, 5000, 'a down report')
  await sleep(300) // several reconnect attempts, each an 'error' event
  t.equal(handle.up, false)
  t.same(states, [['down', 'connection failed (ECONNREFUSED)']], 'one report per transition, with a safe detail')
  const store = new RedisIdempotencyStore({ handle, keyPrefix: 'gw:', route: 'r', ttlMs: 1000 })
  t.teardown(async () => await store.close())
  const started = performance.now()
  const err = await store.begin('k', 'fp').then(() => null, (e: unknown) => e)
  t.type(err, StoreUnavailableError)
  t.ok(performance.now() - started < 500, 'at once: no offline queue')
  const everything = JSON.stringify(states) + String((err as Error).message) + JSON.stringify(err)
  t.notMatch(everything, secret, 'the password never shows')
  t.notMatch(everything, String(port), 'nor the address')
  t.same(uncaught, [], 'no unhandled error event')
})

t.test('standalone URL: the subscriber is made once, on first use; close() closes both', async t => {
  const redis = await startRedis(t)
  const a = open(t, { url: redis.url })
  const b = open(t, { url: redis.url })
  await until(() => a.up && b.up, 10_000, 'connected')
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  const clients = async (): Promise<number> => (await raw.client('LIST') as string).trim().split('\n').length
  const before = await clients()
  t.equal(a.subscriber(), a.subscriber(), 'the same subscriber every time')
  await until(() => a.subscriber().status === 'ready', 10_000, 'the subscriber connected')
  t.equal(await clients(), before + 1, 'one more connection, made lazily')
  await storeWorks(t, a, b, 'std:')
  const during = await clients()
  await a.close()
  t.equal(a.up, false)
  t.throws(() => a.subscriber(), Error, 'no new subscriber after close')
  await until(async () => await clients() === during - 2, 10_000, 'both connections of a closed')
  t.pass('close() closed the client and the subscriber')
  await a.close() // twice is fine
})

t.test('Sentinel: the master is found through the sentinel and carries the store', async t => {
  const master = await startRedis(t)
  const sentinel = await startSentinel(t, master.port, 'gwmaster')
  const cfg = { sentinels: [{ host: '127.0.0.1', port: sentinel.port }], name: 'gwmaster' }
  const a = open(t, cfg)
  const b = open(t, cfg)
  await until(() => a.up && b.up, 10_000, 'connected through the sentinel')
  t.pass('connected')
  await storeWorks(t, a, b, 'sentinel:')
  const raw = new Redis(master.url)
  t.teardown(() => raw.disconnect())
  t.equal(await raw.exists('sentinel:idem:{r:k}'), 1, 'the key is on the master the sentinel named')
})

t.test('Cluster: a one-node cluster carries the store (one key per script: no CROSSSLOT)', async t => {
  const node = await startRedis(t, { args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-announce-ip', '127.0.0.1'] })
  const raw = new Redis(node.url)
  t.teardown(() => raw.disconnect())
  await raw.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383')
  await until(async () => String(await raw.call('CLUSTER', 'INFO')).includes('cluster_state:ok'), 10_000, 'cluster_state:ok')
  const cfg = { cluster: [{ host: '127.0.0.1', port: node.port }] }
  const a = open(t, cfg)
  const b = open(t, cfg)
  await until(() => a.up && b.up, 10_000, 'cluster ready')
  t.pass('connected')
  await storeWorks(t, a, b, 'cluster:')
  t.equal(await raw.exists('cluster:idem:{r:k}'), 1)
})
