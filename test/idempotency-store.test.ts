/**
 * The in-memory idempotency store: begin/complete/release/wait transitions,
 * many waiters, wait timeouts without leaked timers, TTL from completion,
 * crashed owners dropped after the TTL, bounded size preferring done keys,
 * and the request fingerprint. TTLs run on a ManualClock; only wait()
 * timeouts use real (short) timers.
 */
import t from 'tap'
import { ManualClock } from '../gateway/core/clock.js'
import { MemoryIdempotencyStore, fingerprint, type Outcome } from '../gateway/idempotency/index.js'

const TTL = 1000

function store (t: { teardown: (fn: () => unknown) => void }, opts: { maxKeys?: number, sweepEveryMs?: number } = {}): { s: MemoryIdempotencyStore, clock: ManualClock } {
  const clock = new ManualClock(10_000)
  const s = new MemoryIdempotencyStore({ clock, ttlMs: TTL, maxKeys: opts.maxKeys ?? 100, sweepEveryMs: opts.sweepEveryMs ?? 60_000 })
  t.teardown(() => s.close())
  return { s, clock }
}

function response (status: number, body = `body ${status}`): Outcome {
  return { kind: 'response', response: { status, headers: [['content-type', 'text/plain']], body: Buffer.from(body) } }
}

/**
 * The store's wait timers are unref'd (a waiter must not hold up shutdown), so
 * while a test awaits nothing but a wait() the process would simply exit; in the
 * gateway an open socket keeps it alive, here this interval does.
 */
async function alive<T> (p: Promise<T>): Promise<T> {
  const keep = setInterval(() => {}, 1000)
  try { return await p } finally { clearInterval(keep) }
}

/** Resolves with the first settled value of `p`, or 'pending' if it has not settled by the next macrotask. */
async function peek<T> (p: Promise<T>): Promise<T | 'pending'> {
  return await Promise.race([p, new Promise<'pending'>(resolve => setImmediate(() => resolve('pending')))])
}

t.test('owner, in-flight, mismatch and done transitions', async t => {
  const { s } = store(t)
  t.match(await s.begin('k', 'fp1'), { state: 'owner' })
  t.same(await s.begin('k', 'fp1'), { state: 'in-flight' }, 'same fingerprint while running')
  t.same(await s.begin('k', 'fp2'), { state: 'mismatch' }, 'different fingerprint while running')
  t.match(await s.begin('other', 'fp1'), { state: 'owner' }, 'keys are independent')
  const outcome = response(201)
  await s.complete('k', outcome)
  const replay = await s.begin('k', 'fp1')
  t.same(replay, { state: 'done', outcome })
  t.equal(replay.state === 'done' && replay.outcome.kind === 'response' && replay.outcome.response.body, (outcome as any).response.body, 'the Buffer is kept as given')
  t.same(await s.begin('k', 'fp2'), { state: 'mismatch' }, 'different fingerprint once done')
  t.same(await s.begin('other', 'fp1'), { state: 'in-flight' }, 'completing k left other running')
})

t.test('begin is atomic: of concurrent callers exactly one owns the key', async t => {
  const { s } = store(t)
  const results = await Promise.all(Array.from({ length: 20 }, async () => await s.begin('k', 'fp')))
  t.equal(results.filter(r => r.state === 'owner').length, 1)
  t.equal(results.filter(r => r.state === 'in-flight').length, 19)
})

t.test('100 waiters all get the outcome when the owner completes', async t => {
  const { s } = store(t)
  await s.begin('k', 'fp')
  await s.begin('unrelated', 'fp')
  const waiters = Array.from({ length: 100 }, async () => await s.wait('k', 5000))
  const bystander = s.wait('unrelated', 5000)
  t.equal(await peek(waiters[0]!), 'pending', 'waiting until the owner finishes')
  const outcome: Outcome = { kind: 'unknown', code: 'GW_ERR_UPSTREAM_RESET', detail: 'reset after the request was written' }
  await s.complete('k', outcome)
  const results = await Promise.all(waiters)
  t.equal(results.length, 100)
  t.ok(results.every(r => r === outcome), 'every waiter got the very outcome')
  t.equal(await peek(bystander), 'pending', 'a waiter on another key is not woken')
  await s.release('unrelated')
  t.equal(await bystander, 'released')
})

t.test('wait answers at once for a done or missing key', async t => {
  const { s } = store(t)
  t.equal(await peek(s.wait('nobody', 5000)), 'released', 'missing key: released, not a 5 s wait')
  const outcome = response(200)
  await s.begin('k', 'fp')
  await s.complete('k', outcome)
  t.equal(await peek(s.wait('k', 5000)), outcome, 'done key: the outcome at once')
})

t.test('release wakes waiters with released and the key can be begun again', async t => {
  const { s } = store(t)
  await s.begin('k', 'fp')
  const waiters = [s.wait('k', 5000), s.wait('k', 5000), s.wait('k', 5000)]
  t.equal(await peek(waiters[0]!), 'pending')
  await s.release('k')
  t.same(await Promise.all(waiters), ['released', 'released', 'released'])
  t.match(await s.begin('k', 'fp'), { state: 'owner' }, 'a repeat may try again')
  t.same(await s.begin('k', 'fp'), { state: 'in-flight' })
  await s.complete('k', response(200))
  await s.release('k')
  t.match(await s.begin('k', 'other-fp'), { state: 'owner' }, 'release forgets a done key too')
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

t.test('a done key expires ttlMs after completion, not after begin', async t => {
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

t.test('an in-flight key older than ttlMs is dropped and its waiters released', async t => {
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

t.test('close() releases pending waiters and stops the sweep timer', async t => {
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

t.test('fencing: a stale owner cannot overwrite a newer claim; an evicted owner re-stores under its fingerprint', async t => {
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
