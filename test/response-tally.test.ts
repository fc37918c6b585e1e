/** The per-response recording primitives behind /metrics: bucket edges (le is inclusive) and status classes. */
import t from 'tap'
import { LatencyBuckets, LATENCY_BOUNDS_S } from '../gateway/core/latency-buckets.js'
import { ResponseTally, RESPONSE_CLASSES } from '../gateway/core/response-tally.js'

t.test('an observation lands in the first bucket whose bound it does not exceed', async t => {
  const b = new LatencyBuckets()
  b.observe(0)
  b.observe(1) // exactly 1 ms: le="0.001"
  b.observe(1.0001)
  b.observe(999_999) // beyond 60 s: +Inf only
  t.equal(b.counts[0], 2)
  t.equal(b.counts[1], 1)
  t.equal(b.counts[LATENCY_BOUNDS_S.length], 1, '+Inf slot')
  t.equal(b.count, 4)
  t.ok(Math.abs(b.sum - (0 + 0.001 + 0.0010001 + 999.999)) < 1e-9, 'sum in seconds')
})

t.test('responses by class; incomplete ones apart; codes counted', async t => {
  const r = new ResponseTally()
  r.record(101, true, null, 1)
  r.record(200, true, null, 1)
  r.record(599, true, 'GW_ERR_UPSTREAM_TIMEOUT', 5)
  r.record(200, false, null, 2)
  r.record(404, true, 'GW_ERR_ROUTE_NOT_FOUND', null)
  const by = Object.fromEntries(RESPONSE_CLASSES.map((c, i) => [c, r.byClass[i]]))
  t.same(by, { '1xx': 1, '2xx': 1, '3xx': 0, '4xx': 1, '5xx': 1, incomplete: 1 })
  t.same([...r.errors], [['GW_ERR_UPSTREAM_TIMEOUT', 1], ['GW_ERR_ROUTE_NOT_FOUND', 1]])
  t.equal(r.duration.count, 4, 'a response without an arrival time is not timed')
})
