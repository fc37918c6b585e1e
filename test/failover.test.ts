/**
 * Priority failover rails over real sockets: outlier ejection with its cap,
 * Envoy-style overprovisioning spill, panic mode, and active health checks
 * taking an upstream out of selection.
 */
import t from 'tap'
import { upstream, startGateway, policyYaml } from './helpers/harness.js'
import { hits, countBy, until } from './helpers/load.js'

const pool = (ups: Array<{ name: string, url: string, role?: string, weight?: number }>): string =>
  ups.map(u => `      - { name: ${u.name}, url: "${u.url}"${u.role === undefined ? '' : `, role: ${u.role}`}${u.weight === undefined ? '' : `, weight: ${u.weight}`} }`).join('\n')

t.test('outlier ejection: a failing primary is ejected, the cap keeps the rest in, it returns after the ejection time', async t => {
  const a = await upstream(t, { name: 'a', fault: { resetRate: 1 } })
  const b = await upstream(t, { name: 'b', fault: { resetRate: 1 } })
  const c = await upstream(t, { name: 'c' })
  const { url, gw } = await startGateway(t, policyYaml(`  - name: cat
    match: { pathPrefix: / }
    upstreams:
${pool([{ name: 'a', url: a.url }, { name: 'b', url: b.url }, { name: 'c', url: c.url }])}
    outlier: { consecutiveFailures: 2, baseEjectionTime: 400ms, maxEjectionPercent: 33% }
`), { controlTickMs: 20 })
  await hits(`${url}/x`, 6) // a, b, c each twice
  await until(() => gw.events.since(0).some(e => e.kind === 'outlier.eject'), 3000, 'ejection')
  await new Promise(resolve => setTimeout(resolve, 60))
  const ejected = gw.events.since(0).filter(e => e.kind === 'outlier.eject')
  t.equal(ejected.length, 1, 'only one of three may be ejected at 33% (Envoy: eject while ejected share < cap)')
  t.match(ejected[0], { route: 'cat', measured: 2, threshold: 2, after: 'ejected' })
  const out = ejected[0]?.upstream
  const answers = await hits(`${url}/x`, 6)
  t.notOk(Object.keys(countBy(answers)).includes(out as string), `${out} gets nothing while ejected`)
  await until(() => gw.events.since(0).some(e => e.kind === 'outlier.return'), 3000, 'return')
  t.match(gw.events.since(0).find(e => e.kind === 'outlier.return'), { upstream: out, after: 'active' })
})

t.test('overprovisioning: half the primaries out spills only the missing share (factor 1.4 → 30%)', async t => {
  const a = await upstream(t, { name: 'a', fault: { resetRate: 1 } })
  const b = await upstream(t, { name: 'b' })
  const k = await upstream(t, { name: 'k' })
  const { url, gw } = await startGateway(t, policyYaml(`  - name: pay
    match: { pathPrefix: / }
    upstreams:
${pool([{ name: 'a', url: a.url }, { name: 'b', url: b.url }, { name: 'k', url: k.url, role: 'backup' }])}
    breaker: { consecutiveFailures: 1, openFor: 30s }
    failover: { overprovisioning: 1.4 }
`), { controlTickMs: 20 })
  await hits(`${url}/x`, 2) // a fails once → its breaker opens
  t.equal((gw.status() as any).routes[0].upstreams[0].breaker, 'open')
  const answers = await hits(`${url}/x`, 100)
  const c = countBy(answers)
  t.equal(c.a, undefined)
  t.equal(c.k, 30, 'backup takes 1 - 0.5 × 1.4 = 30%')
  t.equal(c.b, 70)
  t.same((gw.status() as any).routes[0].upstreams.map((u: any) => u.share), [0, 0.7, 0.3], '/status agrees')
})

t.test('without overprovisioning, backups wait until no primary is left', async t => {
  const a = await upstream(t, { name: 'a', fault: { resetRate: 1 } })
  const b = await upstream(t, { name: 'b' })
  const k = await upstream(t, { name: 'k' })
  const { url } = await startGateway(t, policyYaml(`  - name: pay
    match: { pathPrefix: / }
    upstreams:
${pool([{ name: 'a', url: a.url }, { name: 'b', url: b.url }, { name: 'k', url: k.url, role: 'backup' }])}
    breaker: { consecutiveFailures: 1, openFor: 30s }
`), { controlTickMs: 20 })
  await hits(`${url}/x`, 2)
  t.same(countBy(await hits(`${url}/x`, 20)), { b: 20 })
})

t.test('panic mode sends to every upstream when none is available', async t => {
  const a = await upstream(t, { name: 'a', fault: { errorRate: 1 } })
  const { url } = await startGateway(t, policyYaml(`  - name: pay
    match: { pathPrefix: / }
    upstreams:
${pool([{ name: 'a', url: a.url }])}
    breaker: { consecutiveFailures: 1, openFor: 30s }
    failover: { panic: true }
`), { controlTickMs: 20 })
  await hits(`${url}/x`, 1)
  const answers = await hits(`${url}/x`, 3)
  t.same(answers.map(x => [x.status, x.upstream]), [[503, 'a'], [503, 'a'], [503, 'a']], 'still sent (the upstream\'s own 503), not refused by the gateway')
  t.equal(a.count, 4)
})

t.test('health checks: an unhealthy primary leaves selection and returns when healthy', async t => {
  const a = await upstream(t, { name: 'a' })
  const k = await upstream(t, { name: 'k' })
  const { url, gw } = await startGateway(t, policyYaml(`  - name: pay
    match: { pathPrefix: / }
    upstreams:
${pool([{ name: 'a', url: a.url }, { name: 'k', url: k.url, role: 'backup' }])}
    healthCheck: { path: /status/200, interval: 50ms, timeout: 200ms, healthyThreshold: 1, unhealthyThreshold: 2 }
`), { controlTickMs: 20 })
  await until(() => (gw.status() as any).routes[0].upstreams[0].healthCheck === 'healthy', 5000, 'healthy')
  a.set({ errorRate: 1 })
  await until(() => gw.events.since(0).some(e => e.kind === 'probe.flip' && e.after === 'unhealthy'), 5000, 'unhealthy flip')
  t.match(gw.events.since(0).find(e => e.kind === 'probe.flip' && e.after === 'unhealthy'), { upstream: 'a', detail: /status 503/ })
  t.same(countBy(await hits(`${url}/x`, 5)), { k: 5 }, 'traffic on the backup')
  a.set({})
  await until(() => gw.events.since(0).some(e => e.kind === 'probe.flip' && e.before === 'unhealthy' && e.after === 'healthy'), 5000, 'healthy again')
  t.same(countBy(await hits(`${url}/x`, 5)), { a: 5 }, 'back on the primary')
})
