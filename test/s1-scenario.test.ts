/**
 * The headline scenario end to end, with short timings (spike at 3 s, heal
 * at 8 s): a real gateway on policies/demo.yaml, real demo upstreams, an
 * open-loop load. The S1 targets are the assertions, and the incident the
 * gateway records must tell the same story in its post-incident report.
 */
import t from 'tap'
import { runS1Scenario, S1_DEFAULTS, S1_FAST } from '../scripts/lib/s1-scenario.js'

t.test('S1: slow payment primary → shifted within targets, no errors, no flaps, restored', async t => {
  const r = await runS1Scenario({ ...S1_DEFAULTS, ...S1_FAST, ratePerSec: 100 })
  const s = r.summary
  t.equal(s.errors, 0, 'no client errors')
  t.ok(s.firstShiftMs !== null && s.firstShiftMs <= 2000, `first shift ${s.firstShiftMs} ms after the spike (≤ 2 s)`)
  t.ok(s.backup50Ms !== null && s.backup50Ms <= 3000, `≥ 50 % on the backup after ${s.backup50Ms} ms (≤ 3 s)`)
  t.ok(s.backup90Ms !== null && s.backup90Ms <= 5000, `≥ 90 % on the backup after ${s.backup90Ms} ms (≤ 5 s)`)
  t.equal(s.reversals, 0, 'no reversal while the spike lasts')
  t.ok(s.restoreGatewayMs !== null && s.restoreGatewayMs <= 30_000, `restored ${s.restoreGatewayMs} ms after healing (≤ 30 s)`)
  t.ok(r.events.some(e => e.kind === 'shift.restored'), 'restored event in the log')
  // The gateway's post-incident report says what the client-side summary says.
  t.equal(r.incident.count, 1, 'one incident for the route')
  t.ok(r.incident.pass, `the report agrees with the summary:\n${r.incident.lines.join('\n')}`)
  t.match(r.incident.report, /\| shift\.step \|[^\n]*\| \d+(\.\d+)? \/ 1000 \| yes \|/, 'shift steps with measured value / threshold')
})
