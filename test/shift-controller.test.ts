/**
 * The shift controller alone, driven by a virtual clock: dwell, steps, the
 * probe share, cooldown, hysteresis, ramp-back, re-trips, the backup guard
 * and shadow mode.
 */
import t from 'tap'
import { ShiftController, type Signal } from '../gateway/control/controller.js'
import type { ShiftConfig } from '../gateway/policy/snapshot.js'
import type { EventDraft } from '../gateway/events/types.js'

const CFG: ShiftConfig = {
  enforce: true,
  quantile: 'p95',
  windowMs: 2000,
  minSamples: 10,
  thresholdMs: 1000,
  forMs: 300,
  step: 0.25,
  intervalMs: 250,
  max: 0.95,
  minShare: 0.05,
  cooldownMs: 5000,
  recover: { thresholdMs: 500, forMs: 3000, maxForMs: 60_000, step: 0.25, intervalMs: 1000, curve: 'linear' },
  errors: null,
  stall: null,
  probe: null
}

const sig = (ms: number | null): Signal => ({ valueMs: ms, samples: ms === null ? 0 : 100 })
const FAST = sig(200)

/** Runs the controller every 50 ms from `from` to `to` with the given primary/backup latency. */
/** Backups measured, neither slow nor known good (between the thresholds): the controller moves step by step. */
const UNPROVEN_BACKUP = 700

function drive (c: ShiftController, from: number, to: number, primary: (now: number) => number | null, backup: (now: number) => number | null = () => UNPROVEN_BACKUP, backupAvailable = true): EventDraft[] {
  const events: EventDraft[] = []
  for (let now = from; now <= to; now += 50) {
    events.push(...c.tick({ now, primary: sig(primary(now)), backup: sig(backup(now)), backupAvailable, primaryHealthy: true }))
  }
  return events
}

t.test('trips after the dwell, steps every interval up to max, never below the probe share', async t => {
  const c = new ShiftController('pay', CFG)
  t.same(drive(c, 0, 1000, () => 200), [], 'healthy: nothing')
  const ev = drive(c, 1050, 4000, () => 5000)
  const steps = ev.filter(e => e.kind === 'shift.step')
  t.same(steps.map(e => e.after), [0.25, 0.5, 0.75, 0.95], 'steps of 25% capped at max = 95%')
  t.equal(c.share, 0.95)
  t.match(steps[0], { before: 0, after: 0.25, measured: 5000, threshold: 1000, enforced: true, route: 'pay' })
  t.match(steps[0]?.detail, /trip #1/)
  // first step at 1050 + 300 dwell; then every 250 ms
  const t0 = 1350
  t.equal(c.view().phase, 'shifting')
  void t0
})

t.test('a breach shorter than the dwell does not trip', async t => {
  const c = new ShiftController('pay', CFG)
  const ev = drive(c, 0, 5000, now => (now % 1000) < 250 ? 5000 : 200)
  t.same(ev, [], 'no events')
  t.equal(c.share, 0)
})

t.test('no signal (too few samples) does nothing and does not reset a dwell', async t => {
  const c = new ShiftController('pay', CFG)
  t.same(drive(c, 0, 3000, () => null), [])
  drive(c, 3050, 5100, () => 5000)
  t.equal(c.share, 0.95)
  // calm, with gaps of no data: the calm dwell keeps running through them
  const ev = drive(c, 5050, 12_000, now => Math.floor(now / 300) % 2 === 0 ? null : 200)
  t.ok(ev.some(e => e.kind === 'shift.ramp'), 'ramps back although the signal has gaps')
})

t.test('ramps back after cooldown and calm dwell, one recover.step per interval', async t => {
  const c = new ShiftController('pay', CFG)
  drive(c, 0, 2000, () => 5000) // trip at 300, reach 0.95 by ~1050
  t.equal(c.share, 0.95)
  // heals at 2050: calm dwell 3000 ms → but cooldown (5000 from trip at 300) ends at 5300
  const ev = drive(c, 2050, 12_000, () => 200)
  const ramps = ev.filter(e => e.kind === 'shift.ramp')
  t.same(ramps.map(e => e.after), [0.7, 0.45, 0.2, 0], 'linear ramp 25% per step')
  t.ok(ev.some(e => e.kind === 'shift.restored'), 'restored event')
  t.equal(c.share, 0)
  t.equal(c.view().phase, 'idle')
})

t.test('hysteresis: a signal between the thresholds neither trips nor recovers', async t => {
  const c = new ShiftController('pay', CFG)
  drive(c, 0, 2000, () => 5000)
  const shareAtMax = c.share
  const ev = drive(c, 2050, 20_000, () => 800) // between 500 and 1000
  t.same(ev, [], 'no movement in the band')
  t.equal(c.share, shareAtMax)
})

t.test('oscillating latency around the threshold does not flap', async t => {
  const c = new ShiftController('pay', CFG)
  // 1200 ms / 900 ms alternating every 200 ms: breaches never last the 300 ms dwell
  const ev = drive(c, 0, 30_000, now => Math.floor(now / 200) % 2 === 0 ? 1200 : 900)
  t.same(ev.map(e => e.kind), [], 'no steps, no ramps')
  // and once shifted, wobbling around the recover threshold does not ramp back and forth
  const c2 = new ShiftController('pay', CFG)
  drive(c2, 0, 2000, () => 5000)
  const ev2 = drive(c2, 2050, 30_000, now => Math.floor(now / 1000) % 2 === 0 ? 450 : 600)
  t.same(ev2.filter(e => e.kind === 'shift.step'), [], 'never shifts again')
  t.same(ev2.filter(e => e.kind === 'shift.ramp'), [], 'calm never lasts the dwell: no ramp')
})

t.test('a trip during ramp-back resumes from the current share and doubles the next dwell', async t => {
  const c = new ShiftController('pay', CFG)
  drive(c, 0, 2000, () => 5000)
  drive(c, 2050, 6500, () => 200) // trip at 300; cooldown ends 5300; ramps at 5300 and 6300
  const mid = c.share
  t.equal(mid, 0.45, 'mid-ramp')
  const ev = drive(c, 6550, 7700, () => 5000)
  const first = ev.find(e => e.kind === 'shift.step')
  t.equal(first?.before, mid, 'resumed from the current share, not from zero')
  t.match(first?.detail, /trip #2/)
  t.equal(c.view().requiredCalmMs, 6000, 'recovery dwell doubled to 6 s')
  // heal: with cooldown 5 s from the re-trip (at 6850) and a 6 s dwell, no ramp for 6 s
  const heal = drive(c, 7750, 13_700, () => 200)
  t.same(heal.filter(e => e.kind === 'shift.ramp'), [], 'still waiting the doubled dwell')
  const later = drive(c, 13_750, 14_000, () => 200)
  t.equal(later.filter(e => e.kind === 'shift.ramp').length, 1, 'ramps after 6 s of calm')
})

t.test('trip count is forgotten after maxFor fully restored', async t => {
  const c = new ShiftController('pay', { ...CFG, recover: { ...CFG.recover, maxForMs: 10_000 } })
  drive(c, 0, 2000, () => 5000)
  drive(c, 2050, 12_000, () => 200) // restored at 8300
  t.equal(c.share, 0)
  t.equal(c.view().trips, 1)
  drive(c, 12_050, 40_000, () => 200)
  t.equal(c.view().trips, 0, 'forgotten')
})

t.test('guard: never shifts onto slow or unavailable backups', async t => {
  const c = new ShiftController('pay', CFG)
  const ev = drive(c, 0, 3000, () => 5000, () => 4000)
  t.equal(c.share, 0, 'nothing moved')
  const holds = ev.filter(e => e.kind === 'shift.hold')
  t.equal(holds.length, 1, 'one hold event, not one per tick')
  t.match(holds[0], { measured: 4000, threshold: 1000 })
  t.match(holds[0]?.detail, /backups are slow too/)
  t.equal(c.view().phase, 'holding')
  // backups recover → shifting starts
  const ev2 = drive(c, 3050, 3500, () => 5000, () => 200)
  t.ok(ev2.some(e => e.kind === 'shift.step'), 'shifts once the backups are fast')

  const c2 = new ShiftController('pay', CFG)
  const ev3 = drive(c2, 0, 2000, () => 5000, () => 200, false)
  t.equal(c2.share, 0)
  t.match(ev3.find(e => e.kind === 'shift.hold')?.detail, /no backup is available/)
})

t.test('shadow mode: same decisions, marked not enforced', async t => {
  const c = new ShiftController('pay', { ...CFG, enforce: false })
  const ev = drive(c, 0, 2000, () => 5000)
  t.ok(ev.length > 0)
  t.ok(ev.every(e => e.enforced === false), 'every event says it was not applied')
  t.equal(c.view().enforce, false)
})

t.test('exponential ramp: step, 2x step, 4x step', async t => {
  const c = new ShiftController('pay', { ...CFG, max: 0.9, recover: { ...CFG.recover, step: 0.1, curve: 'exponential' } })
  drive(c, 0, 2000, () => 5000)
  t.equal(c.share, 0.9)
  const ev = drive(c, 2050, 20_000, () => 200)
  t.same(ev.filter(e => e.kind === 'shift.ramp').map(e => e.after), [0.8, 0.6, 0.2, 0])
})

t.test('primaries failing their health checks do not ramp back', async t => {
  const c = new ShiftController('pay', CFG)
  drive(c, 0, 2000, () => 5000)
  for (let now = 2050; now < 20_000; now += 50) c.tick({ now, primary: FAST, backup: FAST, backupAvailable: true, primaryHealthy: false })
  t.equal(c.share, 0.95)
})

t.test('unmeasured backups: one trial step, then wait for evidence before the next', async t => {
  const c = new ShiftController('pay', CFG)
  // backups have no samples before the trip
  const ev = drive(c, 0, 600, () => 5000, now => now <= 300 ? null : 200)
  t.same(ev.filter(e => e.kind === 'shift.step').map(e => e.after), [0.25], 'only the trial step at 300')
  // evidence that they are below recover.threshold: 300 + 1.1 × 500 / 0.95 ≈ 879
  const mid = drive(c, 650, 850, () => 5000, () => 200)
  t.same(mid.filter(e => e.kind === 'shift.step'), [], 'waiting for evidence about the backups')
  const after = drive(c, 900, 2500, () => 5000, () => 200)
  t.same(after.filter(e => e.kind === 'shift.step').map(e => e.after), [0.95], 'measured fast after the evidence time: straight to max')
  t.equal(after.find(e => e.kind === 'shift.step')?.detail?.includes('known good'), true)

  // between the thresholds (700 ms): not known good, so no step before
  // full evidence (300 + 1.1 × 1000 / 0.95 ≈ 1458), then steps of 25%
  const mid2 = new ShiftController('pay', CFG)
  drive(mid2, 0, 600, () => 5000, now => now <= 300 ? null : 700)
  t.same(drive(mid2, 650, 1450, () => 5000, () => 700).filter(e => e.kind === 'shift.step'), [], 'no step before full evidence')
  t.same(drive(mid2, 1500, 1750, () => 5000, () => 700).filter(e => e.kind === 'shift.step').map(e => e.after), [0.5, 0.75], 'then step by step')

  const slow = new ShiftController('pay', CFG)
  drive(slow, 0, 600, () => 5000, now => now <= 300 ? null : 250)
  const ev2 = drive(slow, 650, 3000, () => 5000, () => 4000)
  t.same(ev2.filter(e => e.kind === 'shift.step'), [], 'measured slow: no further step')
  t.equal(ev2.filter(e => e.kind === 'shift.hold').length, 1)
  t.equal(slow.share, 0.25)
})

const CFG2: ShiftConfig = {
  ...CFG,
  max: 1,
  minShare: 0,
  forMs: 250,
  errors: { rate: 0.2, recoverRate: 0.1, minSamples: 20 },
  stall: { factor: 2, minStuck: 5 },
  probe: { path: '/', intervalMs: 500, timeoutMs: 5000 }
}

interface Tick { primary?: number | null, backup?: number | null, primaryErrors?: number | null, backupErrors?: number | null, stalled?: boolean, backupFresh?: boolean }

function drive2 (c: ShiftController, from: number, to: number, at: (now: number) => Tick): EventDraft[] {
  const events: EventDraft[] = []
  for (let now = from; now <= to; now += 50) {
    const x = at(now)
    events.push(...c.tick({
      now,
      primary: sig(x.primary === undefined ? 200 : x.primary),
      backup: sig(x.backup === undefined ? 200 : x.backup),
      primaryErrors: x.primaryErrors === undefined ? 0 : x.primaryErrors,
      backupErrors: x.backupErrors === undefined ? 0 : x.backupErrors,
      stalled: x.stalled ?? false,
      backupFresh: x.backupFresh,
      backupAvailable: true,
      primaryHealthy: true
    }))
  }
  return events
}

t.test('backups known good (fast, not failing): the first step goes straight to max', async t => {
  const c = new ShiftController('pay', CFG2)
  drive2(c, 0, 1000, () => ({}))
  const ev = drive2(c, 1050, 2000, () => ({ primary: 5000 }))
  const steps = ev.filter(e => e.kind === 'shift.step')
  t.same(steps.map(e => [e.before, e.after]), [[0, 1]], 'one step, 0 → 100%')
  t.match(steps[0]?.detail, /known good/)
})

t.test('a failure rate above errors.rate trips like latency; calm needs it below recoverRate', async t => {
  const c = new ShiftController('pay', CFG2)
  drive2(c, 0, 1000, () => ({ primaryErrors: 0.02 }))
  t.equal(c.share, 0, '2% failures: nothing')
  const ev = drive2(c, 1050, 1250, () => ({ primaryErrors: 0.3 }))
  t.same(ev, [], 'within the dwell: nothing yet')
  const trip = drive2(c, 1300, 1400, () => ({ primaryErrors: 0.3 }))
  t.equal(c.share, 1)
  t.match(trip.find(e => e.kind === 'shift.step')?.detail, /failure rate 30% > 20%/)
  // fast again, but still 15 % failing: between the rates, no ramp-back however long
  const mid = drive2(c, 1450, 30_000, () => ({ primaryErrors: 0.15 }))
  t.same(mid.filter(e => e.kind === 'shift.ramp'), [], 'no ramp while failures sit between the rates')
  const back = drive2(c, 30_050, 45_000, () => ({ primaryErrors: 0.01 }))
  t.ok(back.some(e => e.kind === 'shift.restored'), 'restored once below recoverRate')
})

t.test('a stall trips with no latency evidence yet, and blocks the ramp-back while it lasts', async t => {
  const c = new ShiftController('pay', CFG2)
  drive2(c, 0, 1000, () => ({}))
  // quantile still fast (young ages), but completions have stopped
  drive2(c, 1050, 1400, () => ({ primary: 300, stalled: true }))
  t.equal(c.share, 1, 'tripped on the stall alone')
  const held = drive2(c, 1450, 20_000, () => ({ primary: 200, stalled: true }))
  t.same(held.filter(e => e.kind === 'shift.ramp'), [], 'still stalled: never calm')
  const noEvidence = new ShiftController('pay', CFG2)
  drive2(noEvidence, 0, 1000, () => ({}))
  drive2(noEvidence, 1050, 1400, () => ({ primary: null, primaryErrors: null, stalled: true }))
  t.equal(noEvidence.share, 1, 'a stall is evidence even when the quantile has too few samples')
})

t.test('backups failing as much as the primaries: hold, no step onto them', async t => {
  const c = new ShiftController('pay', CFG2)
  drive2(c, 0, 1000, () => ({}))
  const ev = drive2(c, 1050, 3000, () => ({ primaryErrors: 0.4, backupErrors: 0.4 }))
  t.equal(c.share, 0)
  t.equal(ev.filter(e => e.kind === 'shift.hold').length, 1)
  t.match(ev.find(e => e.kind === 'shift.hold')?.detail, /failing too/)
})

t.test('backups fast only by word from before the incident: a trial step, then max as soon as fresh word is in', async t => {
  const c = new ShiftController('pay', CFG2)
  drive2(c, 0, 1000, () => ({}))
  // tripped at 1300 (250 ms dwell); the backups' probe answers predate the onset
  const trial = drive2(c, 1050, 1300, () => ({ primary: 5000, backupFresh: false }))
  t.same(trial.filter(e => e.kind === 'shift.step').map(e => e.after), [0.25], 'a trial step, not max')
  t.notMatch(trial.find(e => e.kind === 'shift.step')?.detail, /known good/)
  // still no fresh word: no further step, however fast they look
  t.same(drive2(c, 1350, 1850, () => ({ primary: 5000, backupFresh: false })).filter(e => e.kind === 'shift.step'), [], 'no step on stale word')
  // fresh fast word: straight to max, no interval wait
  const up = drive2(c, 1900, 1900, () => ({ primary: 5000, backupFresh: true }))
  t.same(up.filter(e => e.kind === 'shift.step').map(e => [e.before, e.after]), [[0.25, 1]], 'max once fresh')
  // fresh word needs no evidence wait either (it is word about the backups, not young trial ages)
  const quick = new ShiftController('pay', CFG2)
  drive2(quick, 0, 1000, () => ({}))
  drive2(quick, 1050, 1300, () => ({ primary: 5000, backupFresh: false }))
  t.equal(quick.share, 0.25)
  drive2(quick, 1350, 1500, now => ({ primary: 5000, backupFresh: now >= 1500 }))
  t.equal(quick.share, 1, 'max 200 ms after the trial, when the probe answered')
  // without probes (no word either way), the evidence wait holds: 1300 + 1.1 × 500 / 0.95 ≈ 1879
  const noProbes = new ShiftController('pay', CFG2)
  drive2(noProbes, 0, 1000, () => ({}))
  drive2(noProbes, 1050, 1300, () => ({ primary: 5000, backup: null }))
  drive2(noProbes, 1350, 1850, () => ({ primary: 5000 }))
  t.equal(noProbes.share, 0.25, 'young trial ages are no word')
  drive2(noProbes, 1900, 1900, () => ({ primary: 5000 }))
  t.equal(noProbes.share, 1)

  // a backup that slowed down with the primary: the trial's own requests show it, and the share stays at the trial
  const slow = new ShiftController('pay', CFG2)
  drive2(slow, 0, 1000, () => ({}))
  drive2(slow, 1050, 1300, () => ({ primary: 5000, backupFresh: false }))
  const held = drive2(slow, 1350, 6000, now => ({ primary: 5000, backupFresh: false, backup: Math.min(5000, 200 + (now - 1300)) }))
  t.same(held.filter(e => e.kind === 'shift.step'), [], 'no step onto a backup whose trial ages grow')
  t.equal(held.filter(e => e.kind === 'shift.hold').length, 1, 'one hold once its ages pass the threshold')
  t.equal(slow.share, 0.25)
})

t.test('after an error trip, no ramp-back without word that the failures stopped', async t => {
  const c = new ShiftController('pay', CFG2)
  drive2(c, 0, 1000, () => ({}))
  drive2(c, 1050, 1400, () => ({ primaryErrors: 0.3 }))
  t.equal(c.share, 1)
  // the primaries got no traffic any more: fast probe latency, too few attempts for a failure rate
  const blind = drive2(c, 1450, 30_000, () => ({ primary: 200, primaryErrors: null }))
  t.same(blind.filter(e => e.kind === 'shift.ramp'), [], 'no ramp on latency alone')
  // word comes: failures stopped; the calm dwell (3 s) runs from there
  const back = drive2(c, 30_050, 32_900, () => ({ primary: 200, primaryErrors: 0 }))
  t.same(back.filter(e => e.kind === 'shift.ramp'), [], 'the calm dwell starts with the word')
  const later = drive2(c, 32_950, 45_000, now => ({ primary: 200, primaryErrors: now % 200 === 0 ? null : 0 }))
  t.ok(later.some(e => e.kind === 'shift.restored'), 'then ramps back, gaps in the word notwithstanding')

  // a latency trip is not held back by a missing failure rate
  const lat = new ShiftController('pay', CFG2)
  drive2(lat, 0, 1000, () => ({}))
  drive2(lat, 1050, 1400, () => ({ primary: 5000 }))
  t.equal(lat.share, 1)
  const ev = drive2(lat, 1450, 30_000, () => ({ primary: 200, primaryErrors: null }))
  t.ok(ev.some(e => e.kind === 'shift.restored'), 'ramps back on latency alone')
})
