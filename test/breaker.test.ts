/**
 * Circuit breakers over real sockets: a failing primary trips its breaker,
 * traffic moves to the rest; half-open probe closes it; a failing probe
 * reopens it for longer; all open → 503 with Retry-After; 4xx not counted.
 */
import t from 'tap'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'
import { hit, hits, countBy, until } from './helpers/load.js'

const breaker = (extra = ''): string => `    breaker:
      consecutiveFailures: 3
      minRequests: 100
      openFor: 300ms
      maxOpenFor: 2s
${extra}`

t.test('consecutive failures open the breaker; traffic goes to the backup; half-open probe closes it', async t => {
  const primary = await upstream(t, { name: 'p', fault: { errorRate: 1, errorStatus: 503 } })
  const backup = await upstream(t, { name: 'b' })
  const { url, gw } = await startGateway(t, policyYaml(route('pay', '/', [{ name: 'p', url: primary.url }, { name: 'b', url: backup.url, role: 'backup' }], breaker())), { controlTickMs: 20 })
  const first = await hits(`${url}/x`, 3)
  t.same(first.map(a => [a.status, a.upstream]), [[503, 'p'], [503, 'p'], [503, 'p']], 'upstream 503s pass through while closed')
  const next = await hits(`${url}/x`, 5)
  t.same(countBy(next), { b: 5 }, 'breaker open: everything on the backup')
  const open = gw.events.since(0).find(e => e.kind === 'breaker.open')
  t.match(open, { route: 'pay', upstream: 'p', before: 'closed', after: 'open' })
  t.match(open?.detail, /3 failures in a row/)
  const st = gw.status() as any
  t.equal(st.routes[0].upstreams[0].breaker, 'open')
  t.equal(st.routes[0].upstreams[0].available, false)
  t.equal(st.routes[0].upstreams[1].share, 1, 'status shows the backup taking it all')

  primary.set({})
  await new Promise(resolve => setTimeout(resolve, 400))
  const probe = await hit(`${url}/x`)
  t.equal(probe.upstream, 'p', 'half-open: the next request is the probe, to the primary')
  t.equal(probe.status, 200)
  const after = await hits(`${url}/x`, 4)
  t.same(countBy(after), { p: 4 }, 'closed again: back on the primary')
  const kinds = gw.events.since(0).filter(e => e.kind.startsWith('breaker.')).map(e => e.kind)
  t.same(kinds, ['breaker.open', 'breaker.halfOpen', 'breaker.close'])
})

t.test('a failing half-open probe reopens the breaker for longer (backoff)', async t => {
  const primary = await upstream(t, { name: 'p', fault: { resetRate: 1 } })
  const backup = await upstream(t, { name: 'b' })
  const { url, gw } = await startGateway(t, policyYaml(route('pay', '/', [{ name: 'p', url: primary.url }, { name: 'b', url: backup.url, role: 'backup' }], breaker())), { controlTickMs: 20 })
  await hits(`${url}/x`, 3)
  await until(() => gw.events.since(0).some(e => e.kind === 'breaker.halfOpen'), 5000, 'half-open')
  const probe = await hit(`${url}/x`)
  t.equal(probe.upstream, 'p', 'probe went to the primary')
  t.equal(probe.status, 502, 'and failed (reset)')
  const opens = gw.events.since(0).filter(e => e.kind === 'breaker.open')
  t.equal(opens.length, 2, 'opened again')
  t.match(opens[0]?.detail, /opened for 300ms/)
  const second = Number(/opened for (\d+)ms/.exec(opens[1]?.detail ?? '')?.[1])
  t.ok(second >= 480 && second <= 720, `second open lasts 600ms ±20% (${second}ms)`)
})

t.test('4xx are not failures by default; listed status codes are', async t => {
  const primary = await upstream(t, { name: 'p' })
  const backup = await upstream(t, { name: 'b' })
  const { url, gw } = await startGateway(t, policyYaml(route('pay', '/', [{ name: 'p', url: primary.url }, { name: 'b', url: backup.url, role: 'backup' }], breaker())), { controlTickMs: 20 })
  const answers = await hits(`${url}/status/404`, 6)
  t.same(countBy(answers), { p: 6 }, '404s never open the breaker')
  t.notOk(gw.events.since(0).some(e => e.kind === 'breaker.open'))

  const p2 = await upstream(t, { name: 'p' })
  const b2 = await upstream(t, { name: 'b' })
  const g2 = await startGateway(t, policyYaml(route('pay', '/', [{ name: 'p', url: p2.url }, { name: 'b', url: b2.url, role: 'backup' }], breaker('      failOn: [429, 5xx]\n'))), { controlTickMs: 20 })
  await hits(`${g2.url}/status/429`, 3)
  const after = await hit(`${g2.url}/x`)
  t.equal(after.upstream, 'b', '429 listed in failOn opens it')
})

t.test('every breaker open → 503 with Retry-After from the open time', async t => {
  const primary = await upstream(t, { name: 'p', fault: { errorRate: 1 } })
  const { url } = await startGateway(t, policyYaml(route('pay', '/', [{ name: 'p', url: primary.url }], `    breaker:
      consecutiveFailures: 2
      openFor: 3s
`)), { controlTickMs: 20 })
  await hits(`${url}/x`, 2)
  const { request } = await import('undici')
  const res = await request(`${url}/x`)
  t.equal(res.statusCode, 503)
  const body = await res.body.json() as { code: string }
  t.equal(body.code, 'GW_ERR_NO_HEALTHY_UPSTREAM')
  t.equal(res.headers['retry-after'], '3', 'seconds until the half-open probe')
  t.equal(primary.count, 2, 'fail fast: nothing piled onto the dead upstream')
})

t.test('failure rate over the window with a minimum volume', async t => {
  const primary = await upstream(t, { name: 'p', fault: { errorRate: 0.5 }, random: (() => { let i = 0; return () => (i++ % 2) * 0.99 })() })
  const backup = await upstream(t, { name: 'b' })
  const { url, gw } = await startGateway(t, policyYaml(route('pay', '/', [{ name: 'p', url: primary.url }, { name: 'b', url: backup.url, role: 'backup' }], `    breaker:
      failureRate: 40%
      minRequests: 10
      consecutiveFailures: 0
      openFor: 5s
`)), { controlTickMs: 20 })
  const answers = await hits(`${url}/x`, 14)
  const toPrimary = answers.filter(a => a.upstream === 'p').length
  t.ok(toPrimary >= 10 && toPrimary <= 11, `opened once minRequests were seen at >40% failures (${toPrimary} reached the primary)`)
  t.equal(answers.at(-1)?.upstream, 'b')
  t.match(gw.events.since(0).find(e => e.kind === 'breaker.open')?.detail, /failure rate 5\d% of 1\d/)
})

t.test('regression: a request sent through an open breaker (panic mode) does not leave an unhandled rejection', async t => {
  const rejections: unknown[] = []
  const onRejection = (err: unknown): void => { rejections.push(err) }
  process.on('unhandledRejection', onRejection)
  t.teardown(() => { process.off('unhandledRejection', onRejection) })
  const primary = await upstream(t, { name: 'p', fault: { errorRate: 1 } })
  const { url } = await startGateway(t, policyYaml(route('pay', '/', [{ name: 'p', url: primary.url }], `    breaker: { consecutiveFailures: 1, openFor: 30s }
    failover: { panic: true }
`)), { controlTickMs: 20 })
  await hits(`${url}/x`, 4)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.same(rejections, [])
})
