/**
 * Human units, and the sliding-window recorder driven by a manual clock.
 */
import t from 'tap'
import { parseDuration, parsePercent } from '../gateway/core/units.js'
import { ManualClock } from '../gateway/core/clock.js'
import { StatsRegistry } from '../gateway/health/stats-registry.js'
import { OUTCOME_INDEX, statusOutcome } from '../gateway/health/outcome.js'

t.test('durations and percentages', async t => {
  t.equal(parseDuration('250ms'), 250)
  t.equal(parseDuration('1.5s'), 1500)
  t.equal(parseDuration('2m'), 120_000)
  t.equal(parseDuration('1h'), 3_600_000)
  t.throws(() => parseDuration('5'), /expected e\.g\. 250ms/)
  t.throws(() => parseDuration('5 s'))
  t.equal(parsePercent('30%'), 0.3)
  t.equal(parsePercent('100%'), 1)
  t.throws(() => parsePercent('130%'), /above 100%/)
  t.throws(() => parsePercent('0.3'))
})

t.test('status classes', async t => {
  t.equal(statusOutcome(204), OUTCOME_INDEX['2xx'])
  t.equal(statusOutcome(302), OUTCOME_INDEX['3xx'])
  t.equal(statusOutcome(429), OUTCOME_INDEX['4xx'])
  t.equal(statusOutcome(503), OUTCOME_INDEX['5xx'])
})

t.test('window: quantiles of recorded latencies, in-flight ages, slots forgotten on rotation', async t => {
  const clock = new ManualClock(1000)
  const reg = new StatsRegistry(clock, 3000, 1000)
  const s = reg.get('pay', 'primary')
  t.equal(reg.get('pay', 'primary'), s, 'same key, same stats')

  // 100 requests of 10..1000 ms
  for (let i = 1; i <= 100; i++) {
    const a = inflight(clock.now() - i * 10)
    s.begin(a)
    s.end(a, OUTCOME_INDEX['2xx'])
  }
  const v = s.view()
  t.equal(v.window.samples, 100)
  t.ok(Math.abs((v.window.latencyMs?.p50 ?? 0) - 500) <= 10, `p50 ${v.window.latencyMs?.p50}`)
  t.ok(Math.abs((v.window.latencyMs?.p99 ?? 0) - 990) <= 15, `p99 ${v.window.latencyMs?.p99}`)
  t.equal(v.window.latencyMs?.max, 1000)

  const stuck = inflight(clock.now())
  s.begin(stuck)
  clock.advance(4200)
  t.equal(s.view().inflight, 1)
  t.equal(s.view().oldestInflightMs, 4200, 'age of a request that has not answered yet')

  const aborted = inflight(clock.now())
  s.begin(aborted)
  s.end(aborted, OUTCOME_INDEX.aborted, false)
  t.equal(s.view().window.samples, 100, 'an abort is counted but not sampled')
  t.equal(s.view().window.outcomes.aborted, 1)

  reg.rotateAll()
  reg.rotateAll()
  t.equal(s.view().window.samples, 100, 'still inside a 3-slot window after 2 rotations')
  reg.rotateAll()
  t.equal(s.view().window.samples, 0, 'forgotten after the window passed')
  t.equal(s.view().window.latencyMs, null)
  t.equal(s.view().total['2xx'], 100, 'totals are kept')

  reg.retain(new Set(['other/x']))
  t.not(reg.get('pay', 'primary'), s, 'dropped when its upstream left the policy')
  reg.close()
})

t.test('signal window works from clock time 0 (regression: negative slot index crashed the control loop)', async t => {
  const { SignalWindow, newSignalHistogram, addInflightAges, quantileMs } = await import('../gateway/health/signal-window.js')
  const w = new SignalWindow(1000)
  const h = newSignalHistogram()
  w.record(5, 100)
  w.record(120, 300)
  w.mergeInto(h, 130)
  addInflightAges(h, [{ startedAt: 0 }], 130)
  t.equal(h.totalCount, 3)
  const median = quantileMs(h, 'p50', 1).valueMs ?? 0
  t.ok(Math.abs(median - 130) <= 2, `median of 100, 130 (in flight), 300 is ${median}`)
  t.equal(quantileMs(h, 'p50', 5).valueMs, null, 'below minSamples')
  const later = newSignalHistogram()
  w.mergeInto(later, 1050)
  t.equal(later.totalCount, 1, 'at t=1050 the slot of t=5 has left the 1 s window; t=120 is kept')
  const gone = newSignalHistogram()
  w.mergeInto(gone, 5000)
  t.equal(gone.totalCount, 0)
})

/** A stand-in attempt for UpstreamStats.begin/end. */
function inflight (startedAt: number): { startedAt: number, listPrev: null, listNext: null, listOwner: null } {
  return { startedAt, listPrev: null, listNext: null, listOwner: null }
}
