/**
 * The payment chaos drill, short: 4 s at 50 req/s with seed 50 (a reset burst
 * on pay-a, then pay-a down for 1.7 s, so requests are refused and retried to
 * pay-b). Whatever the chaos, no key and no unkeyed request may reach the
 * upstreams twice.
 */
import t from 'tap'
import { runPaymentChaos, reportLines, PolicyRejectedError } from '../scripts/lib/chaos-payments.js'

t.test('payment chaos drill: no duplicate charges under resets and an outage', async t => {
  let r
  try {
    r = await runPaymentChaos({ seconds: 4, ratePerSec: 50, seed: 50 })
  } catch (err) {
    if (err instanceof PolicyRejectedError) return t.fail(err.message)
    throw err
  }
  t.comment(reportLines(r).join('\n'))
  const c = r.client
  t.equal(c.answered, c.sent, 'every request was answered')
  t.ok(c.ok > c.sent / 2, `most requests succeeded (${c.ok}/${c.sent})`)
  t.ok(r.episodes.length >= 1 && r.episodes.some(e => e.targets.includes('pay-a')), `chaos injected on pay-a (${r.episodes.length} episodes)`)
  const retries = typeof r.gateway.delivery?.retries === 'number' ? r.gateway.delivery.retries : 0
  const breakerOpens = r.gateway.events['breaker.open'] ?? 0
  t.ok(c.sent - c.ok > 0 || retries > 0 || breakerOpens > 0, `chaos was felt (${c.sent - c.ok} non-2xx answers, ${retries} retries, ${breakerOpens} breaker opens)`)
  t.ok((c.servedBy['pay-b'] ?? 0) > 0 || retries > 0, `failed over or retried (pay-b served ${c.servedBy['pay-b'] ?? 0}, gateway retries ${retries})`)
  t.same(r.episodes.map(e => `${e.targets.join('+')} ${e.kind}`), ['pay-a reset', 'pay-a down'], 'the plan of seed 50')
  const neverSent = typeof r.gateway.delivery?.neverSent === 'number' ? r.gateway.delivery.neverSent : 0
  // While pay-a is down, either attempts are refused there (never sent, so
  // retried even for POST) or its breaker, opened by the resets before, keeps
  // traffic off it: which one depends on timing on a busy machine.
  t.ok((neverSent > 0 && retries > 0) || (neverSent === 0 && breakerOpens > 0), `pay-a down: refused and never sent (${neverSent}) then retried (${retries}), or kept off by its open breaker (${breakerOpens} opens)`)
  t.ok(neverSent === 0 || retries > 0, 'every never-sent attempt is retried')
  t.ok(c.byKind.resend.sent + c.byKind.mismatch.sent > 0 && c.unkeyed > 0, 'the plan has client re-sends and unkeyed requests')
  t.equal(r.duplicates.keyedDuplicateKeys, 0, 'no idempotency key received twice by the upstreams')
  t.equal(r.duplicates.unkeyedDuplicates, 0, 'no unkeyed request received twice by the upstreams')
  t.equal(c.phantomSuccesses, 0, 'no 2xx for a key that no upstream received')
  t.ok(r.verdict.pass, r.verdict.line)
})
