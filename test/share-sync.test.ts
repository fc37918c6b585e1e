/**
 * The fleet's merge rule (gateway/fleet/share-sync.ts) on an in-memory bus
 * and an injected clock: the largest fresh share wins, the instance's own
 * included; a change is published at once and the rest refreshed every
 * syncInterval; a peer not heard from within staleAfter stops counting, so
 * with Redis away each instance acts on its own decision, and it merges
 * again as soon as reports flow; malformed or echoed reports are ignored,
 * and junk cannot grow its memory.
 */
import t from 'tap'
import type { FleetBus, ShareReport } from '../gateway/fleet/bus.js'
import { ShareSync } from '../gateway/fleet/share-sync.js'

/** A bus whose deliveries the test makes by hand (as Redis pub/sub would). */
class HandBus implements FleetBus {
  readonly published: ShareReport[][] = []
  #listener: ((reports: readonly ShareReport[]) => void) | null = null
  publish (reports: readonly ShareReport[]): void { this.published.push([...reports]) }
  onReports (fn: (reports: readonly ShareReport[]) => void): void { this.#listener = fn }
  deliver (reports: readonly unknown[]): void { this.#listener?.(reports as ShareReport[]) }
  async close (): Promise<void> {}
}

function setup (): { sync: ShareSync, bus: HandBus, clock: { now: number } } {
  const bus = new HandBus()
  const clock = { now: 1000 }
  const sync = new ShareSync({ instance: 'me', bus, now: () => clock.now, syncIntervalMs: 100, staleAfterMs: 500 })
  return { sync, bus, clock }
}

const summary = { phase: 'steady', primaryMs: 200 }
const report = (instance: string, share: number, route = 'pay'): ShareReport => ({ instance, route, share, phase: share > 0 ? 'shifted' : 'steady', primaryMs: 900 })

t.test('alone: its own share; a change goes out at once, the rest every syncInterval', async t => {
  const { sync, bus, clock } = setup()
  t.equal(sync.merge('pay', 0, summary, clock.now), 0)
  t.equal(bus.published.length, 1, 'the first decision is published')
  clock.now += 50
  sync.merge('pay', 0, summary, clock.now)
  t.equal(bus.published.length, 1, 'unchanged within syncInterval: nothing new')
  clock.now += 10
  t.equal(sync.merge('pay', 0.5, summary, clock.now), 0.5)
  t.equal(bus.published.length, 2, 'a change: published at once')
  t.same(bus.published[1], [{ instance: 'me', route: 'pay', share: 0.5, phase: 'steady', primaryMs: 200 }])
  clock.now += 100
  sync.merge('pay', 0.5, summary, clock.now)
  t.equal(bus.published.length, 3, 'unchanged for a syncInterval: refreshed')
})

t.test('the largest fresh share wins, the own one included; a lower peer never pulls it down', async t => {
  const { sync, bus, clock } = setup()
  sync.merge('pay', 0, summary, clock.now) // the control loop's first tick for the route
  bus.deliver([report('a', 0.5), report('b', 0.25)])
  t.equal(sync.merge('pay', 0, summary, clock.now), 0.5, 'a peer that shifted moves this instance too')
  t.equal(sync.merge('pay', 0.75, summary, clock.now), 0.75, 'its own larger decision wins')
  t.equal(sync.merge('other', 0, summary, clock.now), 0, 'per route: another route is untouched')
  t.same(sync.peers('pay', clock.now).map(p => [p.instance, p.share]), [['a', 0.5], ['b', 0.25]])
})

t.test('Redis away: peers go stale after staleAfter and the instance acts on its own decision; it merges again when reports flow', async t => {
  const { sync, bus, clock } = setup()
  sync.merge('pay', 0, summary, clock.now)
  bus.deliver([report('a', 0.5)])
  t.equal(sync.merge('pay', 0, summary, clock.now), 0.5)
  clock.now += 500
  t.equal(sync.merge('pay', 0, summary, clock.now), 0.5, 'still fresh at exactly staleAfter')
  clock.now += 1
  t.equal(sync.merge('pay', 0, summary, clock.now), 0, 'stale: no longer counted')
  t.same(sync.peers('pay', clock.now), [], 'and not shown as a peer')
  t.equal(sync.merge('pay', 0.25, summary, clock.now), 0.25, 'its own signal still moves it')
  bus.deliver([report('a', 1)])
  t.equal(sync.merge('pay', 0.25, summary, clock.now), 1, 'reports again: merged again')
})

t.test('malformed reports and its own echo are ignored', async t => {
  const { sync, bus, clock } = setup()
  sync.merge('pay', 0.1, summary, clock.now)
  bus.deliver([
    report('me', 1), // its own, back from the channel
    { ...report('x', 0.5), share: 2 },
    { ...report('y', 0.5), share: -0.1 },
    { ...report('z', 0.5), share: Number.NaN },
    { ...report('w', 0.5), share: '0.9' },
    { route: 'pay', share: 0.9, phase: 'shifted', primaryMs: 1 },
    { ...report('v', 0.5), primaryMs: 'slow' },
    null,
    7
  ])
  t.equal(sync.merge('pay', 0.1, summary, clock.now), 0.1, 'none of them moved the share')
  t.same(sync.peers('pay', clock.now), [], 'none of them is a peer')
})

t.test('routes no longer in the policy stop being published', async t => {
  const { sync, bus, clock } = setup()
  sync.merge('pay', 0.5, summary, clock.now)
  sync.merge('old', 0.5, summary, clock.now)
  sync.retain(new Set(['pay']))
  clock.now += 100
  sync.merge('pay', 0.5, summary, clock.now)
  t.same(bus.published.at(-1)?.map(r => r.route), ['pay'], 'the refresh carries only the routes kept')
})

t.test('junk cannot grow memory: reports for routes it does not shift are dropped, peers per route are capped, ids are bounded', async t => {
  const { sync, bus, clock } = setup()
  sync.merge('pay', 0, summary, clock.now)
  bus.deliver(Array.from({ length: 50 }, (_, i) => report('a', 0.5, `junk-${i}`)))
  t.same(sync.peers('junk-1', clock.now), [], 'a route this instance does not shift: not kept')
  bus.deliver(Array.from({ length: 300 }, (_, i) => report(`peer-${i}`, 0.25)))
  t.equal(sync.peers('pay', clock.now).length, 256, 'at most 256 peers per route')
  bus.deliver([report('peer-1', 0.75)])
  t.equal(sync.merge('pay', 0, summary, clock.now), 0.75, 'a known peer still updates at the cap')
  bus.deliver([report('x'.repeat(201), 1)])
  t.equal(sync.merge('pay', 0, summary, clock.now), 0.75, 'an id longer than 200 characters is ignored')
  sync.retain(new Set())
  t.same(sync.peers('pay', clock.now), [], 'a route gone from the policy forgets its peers')
})
