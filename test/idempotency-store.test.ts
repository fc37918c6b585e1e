/**
 * The in-memory idempotency store. The store contract (transitions, waiters,
 * release, TTLs, fencing; test/helpers/store-contract.ts) runs here on a
 * ManualClock, and again against Redis in test/idempotency-redis.test.ts.
 * Below it, what only the memory store does: the exact TTL edges, wait timers
 * without leaks, sweep() and its timer, the maxKeys bound preferring done
 * keys, fencing after an eviction, the very objects kept; and the request
 * fingerprint. Only wait() timeouts use real (short) timers.
 */
import t from 'tap'
import { ManualClock } from '../gateway/core/clock.js'
import { MemoryIdempotencyStore, fingerprint } from '../gateway/idempotency/index.js'
import { storeContract, alive, within, response } from './helpers/store-contract.js'

const TTL = 1000

function store (t: { teardown: (fn: () => unknown) => void }, opts: { maxKeys?: number, sweepEveryMs?: number, ttlMs?: number } = {}): { s: MemoryIdempotencyStore, clock: ManualClock } {
  const clock = new ManualClock(10_000)
  const s = new MemoryIdempotencyStore({ clock, ttlMs: opts.ttlMs ?? TTL, maxKeys: opts.maxKeys ?? 100, sweepEveryMs: opts.sweepEveryMs ?? 60_000 })
  t.teardown(() => s.close())
  return { s, clock }
}

/** Resolves with the first settled value of `p`, or 'pending' if it has not settled by the next macrotask. */
async function peek<T> (p: Promise<T>): Promise<T | 'pending'> {
  return await within(p, 0)
}

t.test('the store contract, in memory', async t => {
  storeContract(t, {
    ttlMs: TTL,
    promptMs: 0,
    async make (t, ttlMs) {
      const { s, clock } = store(t, { ttlMs })
      return { store: s, advance: async ms => { clock.advance(ms) } }
    }
  })
})

t.test('the very outcome object and body Buffer are kept (no copy in memory)', async t => {
  const { s } = store(t)
  await s.begin('k', 'fp1')
  const outcome = response(201)
  const waiters = Array.from({ length: 10 }, async () => await s.wait('k', 5000))
  await s.complete('k', outcome)
  const results = await Promise.all(waiters)
  t.ok(results.every(r => r === outcome), 'every waiter got the very outcome')
  const replay = await s.begin('k', 'fp1')
  t.equal(replay.state === 'done' && replay.outcome.kind === 'response' && replay.outcome.response.body, (outcome as any).response.body, 'the Buffer is kept as given')
})

t.test('wait times out, and settled waiters leave no timers behind', async t => {
  const realSet = globalThis.setTimeout
  const realClear = globalThis.clearTimeout
  const created: NodeJS.Timeout[] = []
  const cleared = new Set<unknown>()
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    const timer = realSet(...args)
    created.push(timer)
    return timer
  }) as typeof setTimeout
  globalThis.clearTimeout = ((timer: NodeJS.Timeout | undefined) => {
    cleared.add(timer)
    realClear(timer)
  }) as typeof clearTimeout
  t.teardown(() => {
    globalThis.setTimeout = realSet
    globalThis.clearTimeout = realClear
  })

  const { s } = store(t)
  await s.begin('k', 'fp')
  const started = performance.now()
  t.equal(await alive(s.wait('k', 30)), 'timeout')
  const elapsed = performance.now() - started
  t.ok(elapsed >= 25 && elapsed < 1000, `timed out after ~30 ms (${elapsed.toFixed(1)} ms)`)
  t.equal(created.length, 1, 'one timer per waiter')
  t.equal(created[0]!.hasRef(), false, 'the wait timer does not keep the process alive')

  created.length = 0
  const waiters = Array.from({ length: 10 }, async () => await s.wait('k', 60_000))
  await s.complete('k', response(200))
  await Promise.all(waiters)
  t.equal(created.length, 10)
  t.ok(created.every(timer => cleared.has(timer)), 'every waiter timer was cleared on completion')

  await s.begin('r', 'fp')
  created.length = 0
  const released = s.wait('r', 60_000)
  await s.release('r')
  t.equal(await released, 'released')
  t.ok(cleared.has(created[0]), 'the waiter timer was cleared on release')
})

t.test('exact TTL edge: a done key is replayed until ttlMs after completion, to the millisecond', async t => {
  const { s, clock } = store(t)
  await s.begin('k', 'fp')
  clock.advance(500)
  await s.complete('k', response(200))
  clock.advance(TTL - 1)
  t.equal((await s.begin('k', 'fp')).state, 'done', '1 ms before expiry: still replayed (TTL counts from completion)')
  clock.advance(1)
  t.equal(await s.wait('k', 5000), 'released', 'expired: wait treats it as missing')
  t.match(await s.begin('k', 'other-fp'), { state: 'owner' }, 'expired: a new owner, even with another fingerprint')
})

t.test('sweep() deletes expired done keys and keeps live ones', async t => {
  const { s, clock } = store(t)
  await s.begin('old', 'fp')
  await s.complete('old', response(200))
  clock.advance(TTL / 2)
  await s.begin('young', 'fp')
  await s.complete('young', response(200))
  clock.advance(TTL / 2)
  t.equal(s.size, 2)
  s.sweep()
  t.equal(s.size, 1, 'the old one is gone without any begin() touching it')
  t.equal((await s.begin('young', 'fp')).state, 'done', 'the young one stays')
  clock.advance(TTL / 2)
  s.sweep()
  t.equal(s.size, 0)
})

t.test('the sweep timer runs on its own every sweepEveryMs', async t => {
  const { s, clock } = store(t, { sweepEveryMs: 5 })
  await s.begin('k', 'fp')
  await s.complete('k', response(200))
  clock.advance(TTL)
  t.equal(s.size, 1)
  const until = performance.now() + 2000
  while (s.size > 0 && performance.now() < until) await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(s.size, 0, 'swept by the timer')
})

t.test('exact TTL edge: an in-flight key older than ttlMs is dropped, by the sweep or by begin()', async t => {
  await t.test('by the sweep', async t => {
    const { s, clock } = store(t)
    await s.begin('crashed', 'fp')
    clock.advance(TTL / 2)
    await s.begin('running', 'fp')
    const waiter = s.wait('crashed', 60_000)
    const other = s.wait('running', 60_000)
    clock.advance(TTL / 2)
    s.sweep()
    t.equal(await waiter, 'released', 'the crashed owner no longer blocks its waiters')
    t.equal(await peek(other), 'pending', 'a younger in-flight key is kept')
    t.match(await s.begin('crashed', 'fp'), { state: 'owner' })
    t.same(await s.begin('running', 'fp'), { state: 'in-flight' })
  })
  await t.test('by begin() before any sweep', async t => {
    const { s, clock } = store(t)
    await s.begin('crashed', 'fp')
    const waiter = s.wait('crashed', 60_000)
    clock.advance(TTL - 1)
    t.same(await s.begin('crashed', 'fp'), { state: 'in-flight' }, 'just under the TTL: still running')
    clock.advance(1)
    t.match(await s.begin('crashed', 'other-fp'), { state: 'owner' })
    t.equal(await waiter, 'released')
  })
})

t.test('when full, a done key is evicted before any in-flight key', async t => {
  const { s } = store(t, { maxKeys: 3 })
  await s.begin('a', 'fp') // oldest, in flight
  await s.begin('b', 'fp')
  await s.complete('b', response(200))
  await s.begin('c', 'fp')
  const waiterA = s.wait('a', 60_000)
  t.match(await s.begin('d', 'fp'), { state: 'owner' })
  t.equal(s.size, 3, 'bounded')
  t.same(await s.begin('a', 'fp'), { state: 'in-flight' }, 'the oldest key survived: it is in flight')
  t.equal(await peek(waiterA), 'pending')
  t.match(await s.begin('b', 'fp'), { state: 'owner' }, 'the done key was evicted instead (and b now takes a slot)')
  t.equal(s.size, 3)
  t.equal(await peek(waiterA), 'released', 'all in flight: the oldest in-flight key (a) went, its waiter released')
  t.same(await s.begin('c', 'fp'), { state: 'in-flight' })
  t.same(await s.begin('d', 'fp'), { state: 'in-flight' })
})

t.test('completing an evicted key stores its outcome for a retry', async t => {
  const { s } = store(t, { maxKeys: 1 })
  await s.begin('a', 'fp')
  await s.begin('b', 'fp') // evicts a while it runs
  const outcome = response(200)
  await s.complete('a', outcome) // evicts b (in flight) to make room
  t.equal(s.size, 1)
  t.same(await s.begin('a', 'fp'), { state: 'done', outcome }, 'replayed rather than run twice')
})

t.test('close() releases pending waiters and stops the sweep timer (no sweep after close)', async t => {
  const clock = new ManualClock()
  const s = new MemoryIdempotencyStore({ clock, ttlMs: TTL, maxKeys: 10, sweepEveryMs: 5 })
  await s.begin('k', 'fp')
  await s.complete('k', response(200))
  const waiter = (await s.begin('w', 'fp'), s.wait('w', 60_000))
  await s.close()
  t.equal(await waiter, 'released')
  clock.advance(TTL)
  await new Promise(resolve => setTimeout(resolve, 30))
  t.equal(s.size, 2, 'no sweep ran after close')
  t.equal(await s.wait('w', 60_000), 'released', 'wait after close does not hang')
})

t.test('options are validated', async t => {
  const clock = new ManualClock()
  t.throws(() => new MemoryIdempotencyStore({ clock, ttlMs: 0, maxKeys: 1 }), RangeError)
  t.throws(() => new MemoryIdempotencyStore({ clock, ttlMs: 1, maxKeys: 0 }), RangeError)
  t.throws(() => new MemoryIdempotencyStore({ clock, ttlMs: 1, maxKeys: 1.5 }), RangeError)
  t.throws(() => new MemoryIdempotencyStore({ clock, ttlMs: 1, maxKeys: 1, sweepEveryMs: 0 }), RangeError)
})

t.test('fingerprint: stable, and differs by method, path, query and body', async t => {
  const base = fingerprint('POST', '/pay?x=1', Buffer.from('{"a":1}'))
  t.match(base, /^[0-9a-f]{64}$/)
  t.equal(fingerprint('POST', '/pay?x=1', Buffer.from('{"a":1}')), base, 'stable')
  t.equal(fingerprint('post', '/pay?x=1', Buffer.from('{"a":1}')), base, 'method case does not matter')
  t.not(fingerprint('PUT', '/pay?x=1', Buffer.from('{"a":1}')), base, 'method')
  t.not(fingerprint('POST', '/pay/2?x=1', Buffer.from('{"a":1}')), base, 'path')
  t.not(fingerprint('POST', '/pay?x=2', Buffer.from('{"a":1}')), base, 'query')
  t.not(fingerprint('POST', '/pay?x=1', Buffer.from('{"a":2}')), base, 'body')
  t.not(fingerprint('POST', '/pay', null), fingerprint('POST', '/pa', Buffer.from('y')), 'the newline keeps path and body apart')
  t.equal(fingerprint('GET', '/', null), fingerprint('GET', '/', Buffer.alloc(0)), 'no body = empty body')
})

t.test('fencing after a maxKeys eviction: a stale owner cannot overwrite a newer claim; the owner re-stores under its fingerprint', async t => {
  const { MemoryIdempotencyStore } = await import('../gateway/idempotency/memory-store.js')
  const { ManualClock } = await import('../gateway/core/clock.js')
  const clock = new ManualClock(0)
  const store = new MemoryIdempotencyStore({ clock, ttlMs: 1000, maxKeys: 1 })
  t.teardown(async () => await store.close())
  const a = await store.begin('k', 'fp-a')
  t.equal(a.state, 'owner')
  await store.begin('other', 'fp-x') // maxKeys 1: evicts the in-flight 'k'
  const b = await store.begin('k', 'fp-a')
  t.equal(b.state, 'owner', 'k claimed again by a second owner')
  const staleToken = a.state === 'owner' ? a.token : ''
  await store.complete('k', { kind: 'unknown', code: 'X', detail: 'stale' }, staleToken)
  t.same(await store.begin('k', 'fp-a'), { state: 'in-flight' }, 'the stale owner did not overwrite the newer claim')
  await store.release('k', staleToken)
  t.same(await store.begin('k', 'fp-a'), { state: 'in-flight' }, 'nor release it')
  const token = b.state === 'owner' ? b.token : ''
  await store.complete('k', { kind: 'unknown', code: 'Y', detail: 'owner' }, token)
  const done = await store.begin('k', 'fp-a')
  t.match(done, { state: 'done', outcome: { code: 'Y' } })
  t.same(await store.begin('k', 'fp-other'), { state: 'mismatch' }, 'the fingerprint came from the token')
})
