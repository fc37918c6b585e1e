/**
 * The IdempotencyStore contract as tests, run against every store
 * (test/idempotency-store.test.ts: memory, test/idempotency-redis.test.ts:
 * Redis). Only behaviour the contract promises is checked here; what one
 * store does on its own (memory: sweep, maxKeys, the very Buffer kept; Redis:
 * pub/sub, reconnects) is tested next to it.
 *
 * Time: `advance(ms)` moves the store's time (a ManualClock for memory, a real
 * sleep for Redis), so TTL cases are written in fractions of the TTL with
 * generous margins rather than at the exact millisecond.
 */
import type { Test } from 'tap'
import type { IdempotencyStore, Outcome } from '../../gateway/idempotency/index.js'

export interface ContractStore {
  readonly store: IdempotencyStore
  /** Let `ms` of store time pass. */
  advance (ms: number): Promise<void>
}

export interface ContractOptions {
  /** The ttlMs for the TTL cases (the other cases ask for a TTL long enough never to matter). */
  readonly ttlMs: number
  /**
   * How long an answer that comes "at once" may take (0: before the next
   * macrotask). Also how long a waiter that must stay pending is watched.
   */
  readonly promptMs: number
  /** A fresh, empty store with this ttlMs, closed in t.teardown by the maker. */
  make (t: Test, ttlMs: number): Promise<ContractStore>
}

export function response (status: number, body: string | Buffer = `body ${status}`, headers: Array<[string, string]> = [['content-type', 'text/plain']]): Outcome {
  return { kind: 'response', response: { status, headers, body: typeof body === 'string' ? Buffer.from(body) : body } }
}

/**
 * Store timers are unref'd (a waiter must not hold up shutdown), so while a
 * test awaits nothing but a wait() the process could simply exit; in the
 * gateway an open socket keeps it alive, here this interval does.
 */
export async function alive<T> (p: Promise<T>): Promise<T> {
  const keep = setInterval(() => {}, 1000)
  try { return await p } finally { clearInterval(keep) }
}

/** The value of `p` if it settles within `ms` (0: by the next macrotask), else 'pending'. */
export async function within<T> (p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined
  const pending = new Promise<'pending'>(resolve => {
    if (ms <= 0) setImmediate(() => resolve('pending'))
    else timer = setTimeout(() => resolve('pending'), ms)
  })
  try { return await Promise.race([p, pending]) } finally { clearTimeout(timer) }
}

const owner = (r: { state: string, token?: string }): string => {
  if (r.state !== 'owner' || r.token === undefined) throw new Error(`expected owner, got ${r.state}`)
  return r.token
}

export function storeContract (t: Test, opts: ContractOptions): void {
  const TTL = opts.ttlMs
  const prompt = opts.promptMs
  /** For the cases that are not about expiry: real-time stores must not expire a key mid-test. */
  const LONG = 60_000

  t.test('owner, in-flight, mismatch and done transitions', async t => {
    const { store: s } = await opts.make(t, LONG)
    t.match(await s.begin('k', 'fp1'), { state: 'owner', token: String })
    t.same(await s.begin('k', 'fp1'), { state: 'in-flight' }, 'same fingerprint while running')
    t.same(await s.begin('k', 'fp2'), { state: 'mismatch' }, 'different fingerprint while running')
    t.match(await s.begin('other', 'fp1'), { state: 'owner' }, 'keys are independent')
    const outcome = response(201)
    await s.complete('k', outcome)
    const replay = await s.begin('k', 'fp1')
    t.same(replay, { state: 'done', outcome })
    t.ok(replay.state === 'done' && replay.outcome.kind === 'response' && Buffer.isBuffer(replay.outcome.response.body), 'the body is a Buffer')
    t.same(await s.begin('k', 'fp2'), { state: 'mismatch' }, 'different fingerprint once done')
    t.same(await s.begin('other', 'fp1'), { state: 'in-flight' }, 'completing k left other running')
  })

  t.test('every owner gets its own token', async t => {
    const { store: s } = await opts.make(t, LONG)
    const a = owner(await s.begin('a', 'fp'))
    const b = owner(await s.begin('b', 'fp'))
    t.not(a, b)
    await s.release('a', a)
    const again = owner(await s.begin('a', 'fp'))
    t.not(again, a, 'a key claimed again gets a new token')
  })

  t.test('begin is atomic: of concurrent callers exactly one owns the key', async t => {
    const { store: s } = await opts.make(t, LONG)
    const results = await Promise.all(Array.from({ length: 20 }, async () => await s.begin('k', 'fp')))
    t.equal(results.filter(r => r.state === 'owner').length, 1)
    t.equal(results.filter(r => r.state === 'in-flight').length, 19)
  })

  t.test('100 waiters all get the outcome when the owner completes', async t => {
    const { store: s } = await opts.make(t, LONG)
    await s.begin('k', 'fp')
    await s.begin('unrelated', 'fp')
    const waiters = Array.from({ length: 100 }, async () => await s.wait('k', 10_000))
    const bystander = s.wait('unrelated', 10_000)
    t.equal(await within(waiters[0]!, prompt), 'pending', 'waiting until the owner finishes')
    const outcome: Outcome = { kind: 'unknown', code: 'GW_ERR_UPSTREAM_RESET', detail: 'reset after the request was written' }
    await s.complete('k', outcome)
    const results = await alive(Promise.all(waiters))
    t.equal(results.length, 100)
    t.ok(results.every(r => typeof r === 'object' && r.kind === 'unknown' && r.code === outcome.code && r.detail === outcome.detail), 'every waiter got the outcome')
    t.same(results[99], outcome)
    t.equal(await within(bystander, prompt), 'pending', 'a waiter on another key is not woken')
    await s.release('unrelated')
    t.equal(await alive(bystander), 'released')
  })

  t.test('wait answers at once for a done or missing key', async t => {
    const { store: s } = await opts.make(t, LONG)
    t.equal(await within(s.wait('nobody', 10_000), prompt), 'released', 'missing key: released, not a 10 s wait')
    const outcome = response(200)
    await s.begin('k', 'fp')
    await s.complete('k', outcome)
    t.same(await within(s.wait('k', 10_000), prompt), outcome, 'done key: the outcome at once')
  })

  t.test('release wakes waiters with released and the key can be begun again', async t => {
    const { store: s } = await opts.make(t, LONG)
    await s.begin('k', 'fp')
    const waiters = [s.wait('k', 10_000), s.wait('k', 10_000), s.wait('k', 10_000)]
    t.equal(await within(waiters[0]!, prompt), 'pending')
    await s.release('k')
    t.same(await alive(Promise.all(waiters)), ['released', 'released', 'released'])
    t.match(await s.begin('k', 'fp'), { state: 'owner' }, 'a repeat may try again')
    t.same(await s.begin('k', 'fp'), { state: 'in-flight' })
    await s.complete('k', response(200))
    await s.release('k')
    t.match(await s.begin('k', 'other-fp'), { state: 'owner' }, 'release forgets a done key too')
  })

  t.test('a waiter sees released when the key was released and claimed again', async t => {
    const { store: s } = await opts.make(t, LONG)
    const first = owner(await s.begin('k', 'fp'))
    const waiter = s.wait('k', 10_000)
    t.equal(await within(waiter, prompt), 'pending')
    await s.release('k', first)
    t.match(await s.begin('k', 'fp'), { state: 'owner' }, 'claimed again before the waiter looked')
    t.equal(await alive(waiter), 'released', 'the first owner is gone: the waiter may begin() again (and wait for the new owner)')
  })

  t.test('release with a wrong token is ignored, with the right one it frees the key', async t => {
    const { store: s } = await opts.make(t, LONG)
    const token = owner(await s.begin('k', 'fp'))
    await s.release('k', 'fp.not-the-token')
    t.same(await s.begin('k', 'fp'), { state: 'in-flight' }, 'wrong token: still claimed')
    await s.release('k', token)
    t.match(await s.begin('k', 'fp'), { state: 'owner' }, 'right token: released')
    await s.complete('k', response(200))
    await s.release('k', token)
    t.equal((await s.begin('k', 'fp')).state, 'done', 'a token never releases a done key')
  })

  t.test('wait times out after about ms', async t => {
    const { store: s } = await opts.make(t, LONG)
    await s.begin('k', 'fp')
    const started = performance.now()
    t.equal(await alive(s.wait('k', 150)), 'timeout')
    const elapsed = performance.now() - started
    t.ok(elapsed >= 140 && elapsed < 3000, `timed out after ~150 ms (${elapsed.toFixed(1)} ms)`)
    t.same(await s.begin('k', 'fp'), { state: 'in-flight' }, 'a timed-out wait changes nothing')
  })

  t.test('complete() stores every outcome field: headers in order with duplicates, unknown outcomes', async t => {
    const { store: s } = await opts.make(t, LONG)
    const headers: Array<[string, string]> = [['set-cookie', 'a=1'], ['Content-Type', 'application/json'], ['set-cookie', 'b=2'], ['x-empty', '']]
    const outcome = response(202, '{"ok":true}', headers)
    await s.begin('r', 'fp')
    await s.complete('r', outcome)
    t.same(await s.begin('r', 'fp'), { state: 'done', outcome })
    const empty = response(204, Buffer.alloc(0), [])
    await s.begin('e', 'fp')
    await s.complete('e', empty)
    t.same(await s.begin('e', 'fp'), { state: 'done', outcome: empty }, 'no headers, empty body')
    const unknown: Outcome = { kind: 'unknown', code: 'GW_ERR_UPSTREAM_TIMEOUT', detail: 'no answer within 2000ms — ünïcode kept' }
    await s.begin('u', 'fp')
    await s.complete('u', unknown)
    t.same(await s.begin('u', 'fp'), { state: 'done', outcome: unknown })
  })

  t.test('complete() without a token for a key never begun is replayed to any fingerprint', async t => {
    const { store: s } = await opts.make(t, LONG)
    const outcome = response(200)
    await s.complete('k', outcome)
    t.same(await s.begin('k', 'fp-a'), { state: 'done', outcome })
    t.same(await s.begin('k', 'fp-b'), { state: 'done', outcome }, 'no fingerprint known: replayed rather than run twice')
  })

  t.test('a second complete() without a token replaces the outcome and keeps the fingerprint', async t => {
    const { store: s } = await opts.make(t, LONG)
    await s.begin('k', 'fp')
    await s.complete('k', response(200, 'first'))
    await s.complete('k', response(200, 'second'))
    t.same(await s.begin('k', 'fp'), { state: 'done', outcome: response(200, 'second') })
    t.same(await s.begin('k', 'other'), { state: 'mismatch' })
  })

  t.test('a done key expires ttlMs after completion, not after begin', async t => {
    const { store: s, advance } = await opts.make(t, TTL)
    await s.begin('k', 'fp')
    await advance(TTL * 0.5)
    await s.complete('k', response(200))
    await advance(TTL * 0.6)
    t.equal((await s.begin('k', 'fp')).state, 'done', '1.1 TTL after begin, 0.6 after completion: still replayed')
    await advance(TTL * 0.6)
    t.equal(await alive(s.wait('k', 10_000)), 'released', 'expired: wait treats it as missing')
    t.match(await s.begin('k', 'other-fp'), { state: 'owner' }, 'expired: a new owner, even with another fingerprint')
  })

  t.test('an in-flight key older than ttlMs is dropped and its waiters released', async t => {
    const { store: s, advance } = await opts.make(t, TTL)
    await s.begin('crashed', 'fp')
    const waiter = s.wait('crashed', 60_000)
    await advance(TTL * 0.5)
    t.same(await s.begin('crashed', 'fp'), { state: 'in-flight' }, 'under the TTL: still running')
    t.equal(await within(waiter, 0), 'pending')
    await advance(TTL * 0.7)
    t.match(await s.begin('crashed', 'other-fp'), { state: 'owner' }, 'past the TTL: claimable by anyone')
    t.equal(await alive(waiter), 'released', 'the crashed owner no longer blocks its waiters')
  })

  t.test('fencing: a stale owner cannot complete or release a newer claim', async t => {
    const { store: s, advance } = await opts.make(t, TTL)
    const stale = owner(await s.begin('k', 'fp-a'))
    await advance(TTL * 1.2) // the first owner's claim expired
    const fresh = owner(await s.begin('k', 'fp-a'))
    t.not(fresh, stale)
    await s.complete('k', { kind: 'unknown', code: 'X', detail: 'stale' }, stale)
    t.same(await s.begin('k', 'fp-a'), { state: 'in-flight' }, 'the stale owner did not overwrite the newer claim')
    await s.release('k', stale)
    t.same(await s.begin('k', 'fp-a'), { state: 'in-flight' }, 'nor release it')
    await s.complete('k', { kind: 'unknown', code: 'Y', detail: 'owner' }, fresh)
    t.match(await s.begin('k', 'fp-a'), { state: 'done', outcome: { code: 'Y' } })
    await s.complete('k', { kind: 'unknown', code: 'Z', detail: 'late' }, stale)
    t.match(await s.begin('k', 'fp-a'), { state: 'done', outcome: { code: 'Y' } }, 'a token never overwrites a done key')
    await s.complete('k', { kind: 'unknown', code: 'Y2', detail: 'twice' }, fresh)
    t.match(await s.begin('k', 'fp-a'), { state: 'done', outcome: { code: 'Y' } }, 'not even the owner\'s own token, a second time')
  })

  t.test('completing a key whose claim vanished stores the outcome under the token\'s fingerprint', async t => {
    const { store: s, advance } = await opts.make(t, TTL)
    const token = owner(await s.begin('k', 'fp.with.dots'))
    await advance(TTL * 1.2) // the claim expired while the request ran
    const outcome = response(200, 'late but stored')
    await s.complete('k', outcome, token)
    t.same(await s.begin('k', 'fp.with.dots'), { state: 'done', outcome }, 'a retry replays rather than runs twice')
    t.same(await s.begin('k', 'fp-other'), { state: 'mismatch' }, 'the fingerprint came from the token')
  })

  t.test('close() releases pending waiters; wait after close does not hang', async t => {
    const { store: s } = await opts.make(t, LONG)
    await s.begin('w', 'fp')
    const waiter = s.wait('w', 60_000)
    t.equal(await within(waiter, prompt), 'pending')
    await s.close()
    t.equal(await within(waiter, prompt), 'released')
    t.equal(await within(s.wait('w', 60_000), prompt), 'released', 'wait after close')
    await s.close() // twice is fine
  })
}
