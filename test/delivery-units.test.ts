/**
 * The pure parts of delivery: the retry decision matrix, client deadlines,
 * the retry budget on a manual clock, failure classification.
 */
import t from 'tap'
import { retryDecision, type RetryQuestion } from '../gateway/delivery/retry-policy.js'
import { parseClientDeadline, effectiveTotalMs } from '../gateway/delivery/client-deadline.js'
import { RetryBudget } from '../gateway/delivery/budget.js'
import { statusFailure, transportFailure, parseRetryAfter, type AttemptFailure } from '../gateway/delivery/failure.js'
import { ERRORS } from '../gateway/core/errors.js'
import { OUTCOME_INDEX } from '../gateway/health/outcome.js'
import { ManualClock } from '../gateway/core/clock.js'
import type { RetryConfig } from '../gateway/policy/snapshot.js'

const CFG: RetryConfig = { attempts: 3, on: new Set(['connect-failure', 'reset', '503', '429']), backoffBaseMs: 100, backoffMaxMs: 1000, bufferBodyBytes: 65536, budgetRatio: 0.2, budgetMinPerSecond: 3, budgetWindowMs: 10_000 }
const refused = transportFailure({ spec: ERRORS.UPSTREAM_CONNECT, outcome: OUTCOME_INDEX.connect, detail: 'refused' }, 'ECONNREFUSED', false)
const reset = transportFailure({ spec: ERRORS.UPSTREAM_RESET, outcome: OUTCOME_INDEX.reset, detail: 'reset' }, 'ECONNRESET', true)
const q = (over: Partial<RetryQuestion> & { failure: AttemptFailure }): RetryQuestion => ({ cfg: CFG, method: 'GET', attempts: 1, bodyReplayable: true, keyedAndDeduped: false, timeLeftMs: Infinity, random: 0.5, ...over })

t.test('classification', async t => {
  t.same(refused.conditions, ['connect-failure', 'refused'])
  t.equal(refused.delivery, 'never-sent')
  t.equal(reset.delivery, 'maybe-processed')
  t.equal(transportFailure({ spec: ERRORS.UPSTREAM_RESET, outcome: OUTCOME_INDEX.reset, detail: 'x' }, 'ECONNRESET', false).delivery, 'never-sent', 'reset before the request was handed to a connection')
  t.equal(statusFailure(200, null), null)
  t.match(statusFailure(503, '2'), { delivery: 'maybe-processed', conditions: ['503'], retryAfterMs: 2000 })
  t.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:00 GMT')), 60_000)
  t.equal(parseRetryAfter('soon'), null)
})

t.test('retry decisions and their reasons', async t => {
  t.match(retryDecision(q({ failure: reset })), { retry: true })
  t.match(retryDecision(q({ failure: reset, method: 'POST' })), { retry: false, reason: /POST may have been processed/ })
  t.match(retryDecision(q({ failure: refused, method: 'POST' })), { retry: true }, 'never sent: safe for POST')
  t.match(retryDecision(q({ failure: reset, method: 'PATCH', keyedAndDeduped: true })), { retry: true }, 'keyed and deduped upstream')
  t.match(retryDecision(q({ failure: reset, attempts: 3 })), { retry: false, reason: 'all 3 attempts used' })
  t.match(retryDecision(q({ failure: reset, bodyReplayable: false })), { retry: false, reason: /streamed/ })
  t.match(retryDecision(q({ cfg: null, failure: reset })), { retry: false, reason: 'the route has no retry policy' })
  t.match(retryDecision(q({ failure: statusFailure(502, null) as AttemptFailure })), { retry: false, reason: '502 is not in retry.on' })
  t.match(retryDecision(q({ failure: statusFailure(429, '5') as AttemptFailure, timeLeftMs: 3000 })), { retry: false, reason: /pass the request deadline/ }, 'Retry-After beyond the deadline')
  t.match(retryDecision(q({ failure: statusFailure(429, '1') as AttemptFailure })), { retry: true, delayMs: 1000 }, 'honours Retry-After')
  t.match(retryDecision(q({ failure: reset, attempts: 2, random: 1 })), { retry: true, delayMs: 200 }, 'backoff doubles (full jitter upper bound)')
  t.match(retryDecision(q({ failure: reset, attempts: 2, random: 0 })), { retry: true, delayMs: 0 })
})

t.test('client deadlines only shorten', async t => {
  t.equal(parseClientDeadline('500ms', null), 500)
  t.equal(parseClientDeadline('2s', null), 2000)
  t.equal(parseClientDeadline('1500', null), 1500)
  t.equal(parseClientDeadline(null, '250m'), 250)
  t.equal(parseClientDeadline(null, '3S'), 3000)
  t.equal(parseClientDeadline(null, '1H'), 3_600_000)
  t.equal(parseClientDeadline('900ms', '300m'), 300, 'the shorter of both')
  t.equal(parseClientDeadline('soon', 'x'), null, 'malformed headers are ignored')
  t.equal(effectiveTotalMs(1000, 200), 200)
  t.equal(effectiveTotalMs(1000, 5000), 1000)
  t.equal(effectiveTotalMs(0, null), Infinity)
  t.equal(effectiveTotalMs(0, 700), 700)
})

t.test('retry budget: ratio of requests over the window, with a floor per second', async t => {
  const clock = new ManualClock(0)
  const b = new RetryBudget(clock, 0.2, 1, 10_000)
  let granted = 0
  for (let i = 0; i < 100; i++) {
    b.request()
    if (b.tryRetry()) granted++
  }
  t.equal(granted, 20, '20% of 100')
  const idle = new RetryBudget(clock, 0.2, 1, 10_000)
  let floor = 0
  for (let i = 0; i < 30; i++) if (idle.tryRetry()) floor++
  t.equal(floor, 10, 'no requests: minPerSecond × window = 10')
  clock.advance(11_000)
  t.ok(idle.tryRetry(), 'the window moved on: budget back')
})
