/**
 * Payment-safe delivery over real sockets, with upstreams that count what
 * they receive: no POST is sent twice unless provably never sent or keyed;
 * idempotency keys collapse duplicates; the retry budget holds; deadlines.
 */
import t from 'tap'
import { request } from 'undici'
import { refusedUrl } from './helpers/net.js'
import { upstream, startGateway, policyYaml } from './helpers/harness.js'

const pool = (ups: Array<{ name: string, url: string, role?: string }>): string =>
  ups.map(u => `      - { name: ${u.name}, url: "${u.url}"${u.role === undefined ? '' : `, role: ${u.role}`} }`).join('\n')

/** A route matching everything, with these upstreams and extra route keys. */
const routeOf = (name: string, ups: Array<{ name: string, url: string, role?: string }>, extra: string): string =>
  `  - name: ${name}\n    match: { pathPrefix: / }\n    upstreams:\n${pool(ups)}\n${extra}`


async function call (url: string, init: { method?: 'GET' | 'POST' | 'PUT', body?: string, headers?: Record<string, string> } = {}): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: string }> {
  const res = await request(url, { method: init.method ?? 'GET', body: init.body, headers: init.headers })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

const RETRY = '    retry: { attempts: 3, on: [connect-failure, reset, timeout, 502, 503, 504], backoff: { base: 5ms, max: 20ms } }\n'

t.test('a POST that failed after it was written is never sent to a second upstream without a key', async t => {
  const a = await upstream(t, { name: 'a', fault: { resetRate: 1 } })
  const b = await upstream(t, { name: 'b' })
  const { url, gw } = await startGateway(t, policyYaml(routeOf('pay', [{ name: 'a', url: a.url }, { name: 'b', url: b.url }], `${RETRY}`)))
  const r = await call(`${url}/charge`, { method: 'POST', body: '{"amount":42}' })
  t.equal(r.status, 502)
  t.equal(a.count, 1, 'reached the first upstream once')
  t.equal(b.count, 0, 'never sent to the second')
  const problem = JSON.parse(r.body) as { code: string, detail: string }
  t.equal(problem.code, 'GW_ERR_UPSTREAM_RESET')
  t.match(problem.detail, /POST may have been processed .* not sent again/, 'the client is told why')
  const ev = gw.events.since(0).find(e => e.kind === 'attempt.failed')
  t.match(ev, { before: 'maybe-processed', after: 'not retried', upstream: 'a' })
  const st = gw.status() as any
  t.equal(st.routes[0].delivery.maybeProcessed, 1)
  t.equal(st.routes[0].delivery.unsafeNotRetried, 1)

  // the same failure on a GET is retried, on the other upstream
  const gets = [await call(`${url}/catalogue`), await call(`${url}/catalogue`)]
  t.same(gets.map(g => [g.status, g.headers['x-gateway-upstream']]), [[200, 'b'], [200, 'b']], 'GETs all served')
  t.equal((gw.status() as any).routes[0].delivery.retries, 1, 'the GET that went to the resetting upstream was retried')
})

t.test('a POST that was never sent (connection refused) is retried on another upstream', async t => {
  const dead = await refusedUrl()
  const b = await upstream(t, { name: 'b' })
  const { url, gw } = await startGateway(t, policyYaml(routeOf('pay', [{ name: 'dead', url: dead }, { name: 'b', url: b.url }], `${RETRY}`)))
  let served = 0
  for (let i = 0; i < 4; i++) {
    const r = await call(`${url}/charge`, { method: 'POST', body: `{"n":${i}}` })
    t.equal(r.status, 200, `request ${i} served`)
    served++
  }
  t.equal(b.count, served, 'each POST reached an upstream exactly once')
  t.ok(b.received.every(x => x.bodyBytes > 0), 'replayed with its body')
  const st = gw.status() as any
  t.ok(st.routes[0].delivery.neverSent >= 1, 'classified never sent')
  t.match(gw.events.since(0).find(e => e.kind === 'attempt.failed'), { before: 'never-sent', after: 'retried' })
})

t.test('bodies over bufferBody are streamed once and not retried', async t => {
  const dead = await refusedUrl()
  const b = await upstream(t, { name: 'b' })
  const { url } = await startGateway(t, policyYaml(routeOf('pay', [{ name: 'dead', url: dead }, { name: 'b', url: b.url }], `    retry: { attempts: 3, bufferBody: 1kb }
`)))
  // weights are equal: find a request whose first pick is the dead upstream
  const results = [await call(`${url}/u`, { method: 'PUT', body: 'x'.repeat(4096) }), await call(`${url}/u`, { method: 'PUT', body: 'x'.repeat(4096) })]
  t.same(results.map(r => r.status).sort(), [200, 502], 'the one that hit the dead upstream was not retried')
  t.match(JSON.parse(results.find(r => r.status === 502)?.body ?? '{}').detail, /streamed .* cannot be sent again/)
})

t.test('100 concurrent duplicates of one keyed payment reach the upstream once; all get the same answer', async t => {
  const a = await upstream(t, { name: 'a', baseline: { latencyMs: 150 } })
  const { url, gw } = await startGateway(t, policyYaml(routeOf('pay', [{ name: 'a', url: a.url }], `    idempotency: { ttl: 1m, waitFor: 5s }
`)))
  const body = '{"amount":4200,"currency":"EUR"}'
  const answers = await Promise.all(Array.from({ length: 100 }, async () => await call(`${url}/charge`, { method: 'POST', body, headers: { 'idempotency-key': 'order-77', 'content-type': 'application/json' } })))
  t.equal(a.count, 1, 'the upstream received the payment exactly once')
  t.equal(new Set(answers.map(r => `${r.status} ${r.body}`)).size, 1, 'every client got the same status and body')
  t.equal(answers[0]?.status, 200)
  t.equal(answers.filter(r => r.headers['idempotency-replayed'] === 'true').length, 99, '99 replays are marked')
  t.equal(new Set(answers.map(r => r.headers['x-request-id'])).size, 100, 'each replay has its own request id')
  t.equal((gw.status() as any).routes[0].delivery.replays, 99)
  t.equal(a.received[0]?.headers['idempotency-key'], 'order-77', 'the key is passed upstream')

  const again = await call(`${url}/charge`, { method: 'POST', body, headers: { 'idempotency-key': 'order-77' } })
  t.equal(again.headers['idempotency-replayed'], 'true', 'a later repeat replays too')
  t.equal(a.count, 1)

  const other = await call(`${url}/charge`, { method: 'POST', body: '{"amount":1}', headers: { 'idempotency-key': 'order-77' } })
  t.equal(other.status, 422, 'same key, different body')
  t.equal(JSON.parse(other.body).code, 'GW_ERR_IDEMPOTENCY_MISMATCH')
  t.equal(a.count, 1)
})

t.test('a keyed payment that may have been processed is not sent again: repeats get 409 outcome unknown', async t => {
  const a = await upstream(t, { name: 'a', fault: { resetRate: 1 } })
  const b = await upstream(t, { name: 'b' })
  const { url } = await startGateway(t, policyYaml(routeOf('pay', [{ name: 'a', url: a.url }, { name: 'b', url: b.url, role: 'backup' }], `${RETRY}    idempotency: {}
`)))
  const first = await call(`${url}/charge`, { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k1' } })
  t.equal(first.status, 502)
  a.set({})
  const repeat = await call(`${url}/charge`, { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k1' } })
  t.equal(repeat.status, 409)
  t.equal(JSON.parse(repeat.body).code, 'GW_ERR_IDEMPOTENCY_OUTCOME_UNKNOWN')
  t.equal(a.count + b.count, 1, 'received once in total: not retried, not re-sent on the repeat')
})

t.test('a keyed payment that was never sent releases its key: the repeat goes through', async t => {
  const dead = await refusedUrl()
  const { url } = await startGateway(t, policyYaml(routeOf('pay', [{ name: 'dead', url: dead }], `    idempotency: {}
`)))
  const first = await call(`${url}/charge`, { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k2' } })
  t.equal(first.status, 502)
  t.equal(JSON.parse(first.body).code, 'GW_ERR_UPSTREAM_CONNECT')
  const second = await call(`${url}/charge`, { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k2' } })
  t.equal(second.status, 502, 'tried again (not 409): nothing had reached the upstream')
  t.equal(JSON.parse(second.body).code, 'GW_ERR_UPSTREAM_CONNECT')
})

t.test('keyed and upstream dedupes: retried after a maybe-processed failure, key passed on each attempt', async t => {
  const a = await upstream(t, { name: 'a', fault: { resetRate: 1 } })
  const b = await upstream(t, { name: 'b' })
  const { url } = await startGateway(t, policyYaml(routeOf('pay', [{ name: 'a', url: a.url }, { name: 'b', url: b.url, role: 'backup' }], `${RETRY}    idempotency: { upstreamDedupes: true }
`)))
  const r = await call(`${url}/charge`, { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k3' } })
  t.equal(r.status, 200)
  t.equal(r.headers['x-gateway-upstream'], 'b')
  t.equal(b.received[0]?.headers['idempotency-key'], 'k3')
})

t.test('generate: a key is made for unkeyed POSTs and passed upstream', async t => {
  const a = await upstream(t, { name: 'a' })
  const { url } = await startGateway(t, policyYaml(routeOf('pay', [{ name: 'a', url: a.url }], `    idempotency: { generate: true }
`)))
  await call(`${url}/charge`, { method: 'POST', body: '{}' })
  t.match(a.received[0]?.headers['idempotency-key'], /^[0-9a-f-]{36}$/)
  await call(`${url}/list`)
  t.equal(a.received[1]?.headers['idempotency-key'], undefined, 'not for GET')
})

t.test('keyed body over maxBodySize → 413; invalid key → 400', async t => {
  const a = await upstream(t, { name: 'a' })
  const { url } = await startGateway(t, policyYaml(routeOf('pay', [{ name: 'a', url: a.url }], `    idempotency: { maxBodySize: 100b }
`)))
  const big = await call(`${url}/charge`, { method: 'POST', body: 'x'.repeat(500), headers: { 'idempotency-key': 'k' } })
  t.equal(big.status, 413)
  t.equal(JSON.parse(big.body).code, 'GW_ERR_BODY_TOO_LARGE')
  const bad = await call(`${url}/charge`, { method: 'POST', body: '{}', headers: { 'idempotency-key': 'has space' } })
  t.equal(bad.status, 400)
  t.equal(a.count, 0)
})

t.test('retry budget of 20% holds when every attempt fails', async t => {
  const a = await upstream(t, { name: 'a', fault: { errorRate: 1, errorStatus: 503 } })
  const b = await upstream(t, { name: 'b', fault: { errorRate: 1, errorStatus: 503 } })
  const { url, gw } = await startGateway(t, policyYaml(routeOf('cat', [{ name: 'a', url: a.url }, { name: 'b', url: b.url }], `    retry: { attempts: 5, on: [503], backoff: { base: 1ms, max: 2ms }, budget: { ratio: 20%, minPerSecond: 1, window: 10s } }
`)))
  const n = 200
  for (let i = 0; i < n; i++) await call(`${url}/item`)
  const received = a.count + b.count
  const limit = 1.2 * n + 1 * 10
  t.ok(received <= limit, `upstreams received ${received} ≤ 1.2 × ${n} + 10 = ${limit}`)
  t.ok(received > n + 20, `the budget was used (${received - n} retries)`)
  const d = (gw.status() as any).routes[0].delivery
  t.equal(d.retries, received - n, 'retries counted')
  t.ok(d.budgetDenied > 0, `${d.budgetDenied} retries refused by the budget`)
})

t.test('a client deadline shortens the route total, never lengthens it', async t => {
  const slow = await upstream(t, { name: 's', fault: { latencyMs: 3000 } })
  const { url } = await startGateway(t, policyYaml(routeOf('r', [{ name: 's', url: slow.url }], `    timeouts: { total: 1s }
`)))
  let started = Date.now()
  const short = await call(`${url}/x`, { headers: { 'x-request-timeout': '200ms' } })
  t.equal(short.status, 504)
  t.match(JSON.parse(short.body).detail, /deadline of 200ms/)
  t.ok(Date.now() - started < 900, 'answered at the client deadline, before the route total')
  started = Date.now()
  const long = await call(`${url}/x`, { headers: { 'grpc-timeout': '10S' } })
  t.equal(long.status, 504)
  t.match(JSON.parse(long.body).detail, /deadline of 1000ms/, 'the route total still applies')
})

t.test('a headers timeout clamped to the total deadline is reported as the total deadline', async t => {
  // A 2 s sweeper tick makes undici's (clamped) headers timer always fire first.
  const slow = await upstream(t, { name: 's', fault: { latencyMs: 3000 } })
  const { url } = await startGateway(t, policyYaml(routeOf('r', [{ name: 's', url: slow.url }], `    timeouts: { total: 300ms }
`)), { deadlineTickMs: 2000 })
  const started = Date.now()
  const res = await call(`${url}/x`)
  t.equal(res.status, 504)
  t.match(JSON.parse(res.body).detail, /total deadline of 300ms/)
  t.ok(Date.now() - started < 1900, 'answered by the clamped headers timer, not the slow sweeper')
})

t.test('a keyed payment the upstream refuses with 429 releases its key: the repeat goes through; a 500 does not', async t => {
  const a = await upstream(t, { name: 'a', fault: { errorRate: 1, errorStatus: 429 } })
  const { url } = await startGateway(t, policyYaml(routeOf('pay', [{ name: 'a', url: a.url }], `    idempotency: {}
`)))
  const first = await call(`${url}/charge`, { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k429' } })
  t.equal(first.status, 429)
  a.set({})
  const second = await call(`${url}/charge`, { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k429' } })
  t.equal(second.status, 200, 'sent again: a 429 is a refusal, not an outcome to replay')
  t.equal(second.headers['idempotency-replayed'], undefined)
  t.equal(a.count, 2)
  a.set({ errorRate: 1, errorStatus: 500 })
  const failed = await call(`${url}/charge`, { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k500' } })
  t.equal(failed.status, 500)
  a.set({})
  const repeat = await call(`${url}/charge`, { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k500' } })
  t.equal(repeat.status, 500, 'a 500 may have been processed: its answer is replayed')
  t.equal(repeat.headers['idempotency-replayed'], 'true')
  t.equal(a.count, 3)
})
