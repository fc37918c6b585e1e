/**
 * The guard around the shared idempotency store (idempotency/guarded-store.ts),
 * with a shared store the test switches between answering, unreachable and
 * holding an unreadable record, and a real memory store as the local one:
 * - reject (no local store): an outage is StoreUnavailableError, the caller's 503;
 * - local: an outage claims in memory, and repeats on this instance are
 *   deduplicated there; a record that cannot be read is never claimed anew;
 * - outcomes that could not be written wait in the outbox, are replayed from
 *   it meanwhile, and are written when the store answers again.
 */
import t from 'tap'
import { MemoryIdempotencyStore, StoreUnavailableError, type Outcome } from '../gateway/idempotency/index.js'
import { GuardedStore } from '../gateway/idempotency/guarded-store.js'
import type { BeginResult, IdempotencyStore } from '../gateway/idempotency/types.js'
import { ManualClock } from '../gateway/core/clock.js'
import type { Teardown } from './helpers/harness.js'

type Mode = 'up' | 'unreachable' | 'unreadable'

/** A memory store that can be made to fail like Redis does. */
class Switchable implements IdempotencyStore {
  mode: Mode = 'up'
  constructor (readonly inner: IdempotencyStore) {}
  #gate (): void {
    if (this.mode === 'unreachable') throw new StoreUnavailableError('not connected')
    if (this.mode === 'unreadable') throw new StoreUnavailableError('a stored outcome could not be read', true)
  }

  async begin (key: string, fp: string): Promise<BeginResult> { this.#gate(); return await this.inner.begin(key, fp) }
  async complete (key: string, o: Outcome, token?: string): Promise<void> { this.#gate(); await this.inner.complete(key, o, token) }
  async release (key: string, token?: string): Promise<void> { this.#gate(); await this.inner.release(key, token) }
  async wait (key: string, ms: number): Promise<Outcome | 'released' | 'timeout'> { this.#gate(); return await this.inner.wait(key, ms) }
  async close (): Promise<void> { await this.inner.close() }
}

const memory = (t: Teardown): MemoryIdempotencyStore => {
  const m = new MemoryIdempotencyStore({ clock: new ManualClock(), ttlMs: 60_000, maxKeys: 100 })
  t.teardown(async () => await m.close())
  return m
}
const ok: Outcome = { kind: 'response', response: { status: 200, headers: [['content-type', 'text/plain']], body: Buffer.from('paid') } }
const token = (r: BeginResult): string => { if (r.state !== 'owner') throw new Error(`expected owner, got ${r.state}`); return r.token }

t.test('reject (no local store): an outage is StoreUnavailableError', async t => {
  const shared = new Switchable(memory(t))
  const g = new GuardedStore(shared, null)
  shared.mode = 'unreachable'
  await t.rejects(g.begin('k', 'fp'), StoreUnavailableError)
  await t.rejects(g.wait('k', 10), StoreUnavailableError)
})

t.test('local: an outage claims in memory and dedupes there; an unreadable record is never claimed anew', async t => {
  const shared = new Switchable(memory(t))
  const g = new GuardedStore(shared, memory(t))
  shared.mode = 'unreachable'
  const first = token(await g.begin('k', 'fp'))
  t.match(first, /^L:/, 'claimed locally')
  t.same(await g.begin('k', 'fp'), { state: 'in-flight' }, 'a repeat on this instance waits for it')
  await g.complete('k', ok, first)
  t.same(await g.begin('k', 'fp'), { state: 'done', outcome: ok }, 'and then replays it')

  shared.mode = 'unreadable'
  await t.rejects(g.begin('other', 'fp'), StoreUnavailableError, 'the store answered with a record it cannot read: no local claim')
  await t.rejects(g.wait('other', 10), StoreUnavailableError)
})

t.test('an outcome that could not be written waits in the outbox, is replayed from it, and is written once the store answers', async t => {
  const inner = memory(t)
  const shared = new Switchable(inner)
  const g = new GuardedStore(shared, null)
  const owner = token(await g.begin('pay-1', 'fp'))
  shared.mode = 'unreachable'
  await g.complete('pay-1', ok, owner)
  t.equal(g.pending, 1, 'queued')
  t.same(await g.begin('pay-1', 'fp'), { state: 'done', outcome: ok }, 'a repeat meanwhile is replayed from the outbox')
  t.same(await g.begin('pay-1', 'other-fp'), { state: 'mismatch' }, 'another body under the key: mismatch')
  t.same(await g.wait('pay-1', 10), ok)
  shared.mode = 'up'
  await g.close() // flushes
  t.equal(g.pending, 0, 'written')
  t.same(await inner.begin('pay-1', 'fp'), { state: 'done', outcome: ok }, 'the shared store has it')
})
