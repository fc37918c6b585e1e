/**
 * The breaker's per-request tickets (health/breaker.ts), without sockets:
 * while closed, outcomes are counted over the rotating window (the failure
 * rate opens it; rotation forgets; closing starts afresh); the failure
 * streak trips it on its own and is reset by a success; the half-open probe
 * goes through opossum, which closes or reopens the breaker on its outcome;
 * a request tracked while the breaker refuses changes nothing and leaves no
 * unhandled rejection.
 */
import t from 'tap'
import { EventEmitter } from 'node:events'
import { Breaker } from '../gateway/health/breaker.js'
import type { BreakerConfig } from '../gateway/policy/snapshot.js'
import type { Teardown } from './helpers/harness.js'

const config = (over: Partial<BreakerConfig>): BreakerConfig => ({
  failureRate: 0.5,
  windowMs: 10_000,
  minRequests: 4,
  consecutiveFailures: 0,
  openForMs: 60_000,
  maxOpenForMs: 60_000,
  failOn: new Set(['5xx']),
  failOnStatus: new Set<number>(),
  ...over
} as BreakerConfig)

const settle = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

function breaker (t: Teardown, over: Partial<BreakerConfig>): { b: Breaker, kinds: string[], events: Array<{ kind: string, before?: unknown, detail?: string }>, rotator: EventEmitter } {
  const kinds: string[] = []
  const events: Array<{ kind: string, before?: unknown, detail?: string }> = []
  const rotator = new EventEmitter()
  const b = new Breaker('r', 'u', config(over), e => { kinds.push(e.kind); events.push(e) }, rotator, () => 0.5)
  t.teardown(() => b.shutdown())
  return { b, kinds, events, rotator }
}

/** Collects unhandled rejections for the rest of the test. */
function rejections (t: Teardown): unknown[] {
  const seen: unknown[] = []
  const on = (err: unknown): void => { seen.push(err) }
  process.on('unhandledRejection', on)
  t.teardown(() => { process.off('unhandledRejection', on) })
  return seen
}

const until = async (ok: () => boolean, ms: number): Promise<boolean> => {
  const end = Date.now() + ms
  while (!ok() && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 5))
  return ok()
}

t.test('admitted outcomes reach the rolling rate: 3 failures of 4 open it, 2 of 4 do not', async t => {
  const half = breaker(t, {})
  for (const failed of [true, false, true, false]) half.b.track().done(failed)
  await settle()
  t.equal(half.b.state, 'closed', '50% is not above a 50% failureRate')

  const most = breaker(t, {})
  for (const failed of [false, true, true, true]) most.b.track().done(failed)
  await settle()
  t.equal(most.b.state, 'open', '75% of 4 (minRequests) opens it')
  t.same(most.kinds, ['breaker.open'])
})

t.test('rotation forgets: a full turn of the window drops the old outcomes', async t => {
  const { b, rotator } = breaker(t, {})
  for (let i = 0; i < 3; i++) b.track().done(true)
  t.equal(b.state, 'closed', '3 failures are below minRequests (4)')
  for (let i = 0; i < 9; i++) rotator.emit('rotate')
  b.track().done(true)
  t.equal(b.state, 'open', 'nine rotations: the oldest bucket is still in the window (4 failures of 4)')

  const fresh = breaker(t, {})
  for (let i = 0; i < 3; i++) fresh.b.track().done(true)
  for (let i = 0; i < 10; i++) fresh.rotator.emit('rotate')
  fresh.b.track().done(true)
  t.equal(fresh.b.state, 'closed', 'ten rotations: one failure in a fresh window, not enough requests')
  const b2 = fresh.b
  b2.track().done(true)
  b2.track().done(true)
  b2.track().done(true)
  t.equal(b2.state, 'open', 'four failures in the window: open')
})

t.test('half-open: the one probe goes through opossum; success closes it and the counts start afresh, failure reopens it', async t => {
  const { b, kinds, events } = breaker(t, { openForMs: 30, maxOpenForMs: 30 })
  for (let i = 0; i < 4; i++) b.track().done(true)
  t.equal(b.state, 'open')
  t.ok(await until(() => b.state === 'halfOpen', 2000), 'half-open after openFor')
  t.equal(b.admit(), true, 'the probe slot is free')
  const failing = b.track()
  t.equal(b.admit(), false, 'one probe at a time')
  failing.done(true)
  t.ok(await until(() => b.state === 'open', 1000), 'a failed probe reopens it')
  t.ok(await until(() => b.state === 'halfOpen', 2000), 'half-open again')
  b.track().done(false)
  t.ok(await until(() => b.state === 'closed', 1000), 'a good probe closes it')
  b.track().done(true)
  t.equal(b.state, 'closed', 'one failure after closing: the old failures were dropped with the close')
  t.same(kinds, ['breaker.open', 'breaker.halfOpen', 'breaker.open', 'breaker.halfOpen', 'breaker.close'])
  t.match(events[0], { before: 'closed', detail: /failure rate 100% of 4 finished/ }, 'the trip says why')
  t.match(events[2], { before: 'halfOpen', detail: /the probe request failed/ }, 'the reopen says it was the probe')
})

t.test('a probe that ends without an outcome reopens the breaker; a closed one does not count it', async t => {
  const { b, kinds } = breaker(t, { openForMs: 30, maxOpenForMs: 30 })
  for (let i = 0; i < 3; i++) b.track().done(true)
  for (let i = 0; i < 10; i++) b.track().abandon()
  b.track().done(true)
  t.equal(b.state, 'open', 'abandoned requests were not counted: 4 failures of 4')
  t.ok(await until(() => b.state === 'halfOpen', 2000), 'half-open')
  b.track().abandon()
  t.ok(await until(() => b.state === 'open', 1000), 'an abandoned probe proves nothing: open again')
  t.same(kinds, ['breaker.open', 'breaker.halfOpen', 'breaker.open'])
})

t.test('a breaker shut down while half-open (a reload dropped it) admits nothing and leaves no unhandled rejection', async t => {
  const seen = rejections(t)
  const { b } = breaker(t, { openForMs: 30, maxOpenForMs: 30, consecutiveFailures: 1 })
  b.track().done(true)
  t.ok(await until(() => b.state === 'halfOpen', 2000), 'half-open')
  b.shutdown()
  t.equal(b.admit(), false, 'shut down: no probe slot')
  b.track().done(true)
  b.track().done(false)
  await settle()
  await settle()
  t.same(seen, [], 'no unhandled rejection')
})

t.test('the failure streak trips the breaker by itself; a success resets it', async t => {
  const { b } = breaker(t, { consecutiveFailures: 3, minRequests: 1000 })
  for (const failed of [true, true, false, true, true]) b.track().done(failed)
  await settle()
  t.equal(b.state, 'closed', 'two, a success, two: no streak of three')
  b.track().done(true)
  t.equal(b.state, 'open', 'the third failure in a row opens it at once')
})

t.test('requests tracked while the breaker refuses change nothing and leave no unhandled rejection', async t => {
  const seen = rejections(t)
  const { b, kinds } = breaker(t, { consecutiveFailures: 1, minRequests: 1000 })
  b.track().done(true)
  t.equal(b.state, 'open')
  t.equal(b.admit(), false)
  for (let i = 0; i < 20; i++) b.track().done(i % 2 === 0)
  await settle()
  t.same(seen, [], 'no unhandled rejection')
  t.same(kinds, ['breaker.open'], 'opened once, nothing else happened')
  t.equal(b.state, 'open')
})
