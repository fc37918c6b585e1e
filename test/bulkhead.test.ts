/**
 * Tenant bulkheads (route `bulkheads`): each pool is compiled into a route
 * ROUTE.POOL just before its route, with the pool's own upstreams, gate,
 * limits and priority and the rest of the route's settings; mistakes point
 * at the pool's lines. Over real sockets: a flooding tenant is refused at its
 * own gate and never reaches the shared upstream, other tenants are all
 * served, a pool without upstreams of its own uses the route's with a gate of
 * its own, and the pools show in /status.
 */
import t from 'tap'
import { Agent, request } from 'undici'
import { upstream, startGateway, policyYaml, route, policyFile } from './helpers/harness.js'
import { loadPolicyFile } from '../gateway/policy/load.js'

const pools = (liveUrl: string, extra = ''): string => `    bulkheads:
      header: X-Tenant
      pools:
        - name: live
          tenants: [live-stream, live-2]
          priority: low
          upstreams:
            - { name: live, url: ${liveUrl} }
          admission: { maxConcurrent: 4, queue: 0 }
          rateLimits:
            - { name: tenant, key: route, limit: 1000, window: 1s, scope: local }
        - name: vip
          tenants: [vip-1]
          admission: { maxConcurrent: 2, queue: 0 }
${extra}`

async function send (url: string, n: number, headers: Record<string, string | string[]> = {}): Promise<number[]> {
  return await Promise.all(Array.from({ length: n }, async () => {
    const agent = new Agent({ connections: 1 })
    try {
      const res = await request(url, { dispatcher: agent, headers })
      await res.body.dump()
      return res.statusCode
    } finally { await agent.close() }
  }))
}

t.test('compile: each pool is a route ROUTE.POOL before its route, with its own settings and the route\'s others', async t => {
  const file = await policyFile(policyYaml(route('orders', '/orders', [{ name: 'shared', url: 'http://127.0.0.1:9101' }],
    '    timeouts: { responseHeaders: 7s }\n    admission: { maxConcurrent: 100 }\n' + pools('http://127.0.0.1:9102'))))
  const loaded = await loadPolicyFile(file)
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues))
  const routes = loaded.snapshot.routes
  t.same(routes.map(r => r.name), ['orders.live', 'orders.vip', 'orders'], 'pools first, in file order, then the route')
  const [live, vip, orders] = routes as [typeof routes[0], typeof routes[0], typeof routes[0]]
  t.same(live.upstreams.map(u => [u.key, u.origin]), [['orders.live/live', 'http://127.0.0.1:9102']], 'live has its own cluster')
  t.same(vip.upstreams.map(u => [u.key, u.origin]), [['orders.vip/shared', 'http://127.0.0.1:9101']], 'vip uses the route\'s upstreams, as its own instances')
  t.equal(live.admission?.maxConcurrent, 4)
  t.equal(vip.admission?.maxConcurrent, 2)
  t.equal(orders.admission?.maxConcurrent, 100)
  t.equal(live.priority, 'low')
  t.equal(vip.priority, 'normal')
  t.same(live.rateLimits.map(l => l.name), ['tenant'])
  t.same(vip.rateLimits, [], 'the route has no limits, so neither has vip')
  t.equal(vip.timeouts.responseHeadersMs, 7000, 'the route\'s other settings carry over')
  t.same(live.tenant && { ...live.tenant, values: [...live.tenant.values] }, { header: 'x-tenant', values: ['live-stream', 'live-2'], route: 'orders', pool: 'live' })
  t.equal(orders.tenant, null)
})

t.test('compile: mistakes in a pool point at the pool\'s lines and name the pool', async t => {
  const bad = policyYaml(route('orders', '/orders', [{ name: 'shared', url: 'http://127.0.0.1:9101' }], `    bulkheads:
      header: X-Tenant
      pools:
        - name: live
          tenants: [a, b]
          upstreams:
            - { name: live, url: "ftp://10.0.0.1" }
          admission: { maxConcurrent: 4, queueTimeout: 0ms }
        - name: live
          tenants: [c]
        - name: other
          tenants: [b]
`) + route('orders.live', '/other', [{ name: 'x', url: 'http://127.0.0.1:9103' }]))
  const loaded = await loadPolicyFile(await policyFile(bad))
  t.equal(loaded.ok, false)
  const issues = loaded.ok ? [] : loaded.issues
  const text = issues.map(i => `${i.path} @${i.line}: ${i.message}`).join('\n')
  const lineOf = (needle: string, from = 0): number => bad.split('\n').findIndex((l, i) => i >= from && l.includes(needle)) + 1
  const find = (re: RegExp) => issues.find(i => re.test(i.message))
  t.equal(find(/ftp/)?.line, lineOf('ftp://'), `the pool's upstream URL, at its line:\n${text}`)
  t.equal(find(/ftp/)?.path, 'routes[0].bulkheads.pools[0].upstreams[0].url', 'with the pool\'s path')
  t.match(find(/0ms is too short/)?.message, /^bulkhead pool "live": /, 'a compile check names the pool')
  t.equal(find(/0ms is too short/)?.line, lineOf('queueTimeout: 0ms'), 'the pool\'s admission, at its line')
  t.equal(find(/tenant "b" is already in pool "live"/)?.line, lineOf('tenants: [b]'), 'a tenant in two pools')
  t.ok(find(/bulkhead pool name "live" is already used/), 'pool names are unique')
  t.ok(find(/route name "orders.live" is already used/), 'a pool\'s route name may not clash with a route')
  t.equal(issues.filter(i => /0ms is too short/.test(i.message)).length, 1, 'each mistake once')
})

t.test('over sockets: a tenant\'s flood is refused at its pool, the others are all served; a pool on the route\'s upstreams has its own gate; /status shows the pools', async t => {
  const live = await upstream(t, { name: 'live', baseline: { latencyMs: 300 } })
  const shared = await upstream(t, { name: 'shared', baseline: { latencyMs: 300 } })
  const { url, adminUrl } = await startGateway(t, policyYaml(route('orders', '/orders', [{ name: 'shared', url: shared.url }], pools(live.url))))
  const flood = send(`${url}/orders/new`, 40, { 'x-tenant': 'live-stream' })
  const others = send(`${url}/orders/new`, 20, { 'x-tenant': 'm-17' })
  const vip = send(`${url}/orders/new`, 6, { 'x-tenant': 'vip-1' })
  const [f, o, v] = await Promise.all([flood, others, vip])
  t.equal(f.filter(s => s === 200).length, 4, 'the flooding tenant got its pool\'s four slots')
  t.equal(f.filter(s => s === 503).length, 36, 'and 503 for the rest')
  t.same([...new Set(o)], [200], 'every other tenant was served')
  t.equal(v.filter(s => s === 200).length, 2, 'vip got its own two slots, on the shared upstream')
  t.equal(live.count, 4, 'only the pool\'s admitted requests reached the live cluster')
  t.equal(shared.count, 22, 'the shared upstream saw the 20 others and vip\'s 2')

  const before = live.count
  t.same(await send(`${url}/orders/x`, 1, { 'x-tenant': ['m-1', 'live-2'] }), [200])
  t.equal(live.count, before + 1, 'a request naming a pool\'s tenant in any x-tenant field is held in the pool')
  const sharedBefore = shared.count
  t.same(await send(`${url}/orders/x`, 1, { 'x-tenant': 'Live-Stream' }), [200])
  t.equal(shared.count, sharedBefore + 1, 'values compare exactly: another case is another tenant')

  const status = await (await request(`${adminUrl}/status`)).body.json() as { routes: Array<{ name: string, bulkhead: unknown, priority: string, admission: { refused: { queueFull: number } } | null }> }
  const byName = new Map(status.routes.map(r => [r.name, r]))
  t.same(byName.get('orders.live')?.bulkhead, { route: 'orders', pool: 'live', header: 'x-tenant', tenants: 2 })
  t.equal(byName.get('orders.live')?.priority, 'low')
  t.equal(byName.get('orders.live')?.admission?.refused.queueFull, 36, 'the flood\'s refusals are counted on the pool')
  t.equal(byName.get('orders')?.bulkhead, null)
  t.equal(byName.get('orders')?.admission, null, 'the route itself has no gate')
})

t.test('perTenant: each tenant gets its share of the route; a request without the header is not counted; slots come back', async t => {
  const shared = await upstream(t, { name: 'shared', baseline: { latencyMs: 300 } })
  const { url, adminUrl } = await startGateway(t, policyYaml(route('orders', '/orders', [{ name: 'shared', url: shared.url }],
    '    bulkheads:\n      header: X-Tenant\n      perTenant: { maxConcurrent: 3 }\n')))
  const answers = async (n: number, headers: Record<string, string>): Promise<Array<{ status: number, code: string, retryAfter: string }>> =>
    await Promise.all(Array.from({ length: n }, async () => {
      const agent = new Agent({ connections: 1 })
      try {
        const res = await request(`${url}/orders/new`, { dispatcher: agent, headers })
        await res.body.dump()
        return { status: res.statusCode, code: String(res.headers['x-gateway-error'] ?? ''), retryAfter: String(res.headers['retry-after'] ?? '') }
      } finally { await agent.close() }
    }))
  const [a, b, none] = await Promise.all([answers(10, { 'x-tenant': 'm-a' }), answers(3, { 'x-tenant': 'm-b' }), answers(5, {})])
  t.equal(a.filter(x => x.status === 200).length, 3, 'tenant a got its three')
  const refused = a.filter(x => x.status !== 200)
  t.equal(refused.length, 7)
  t.same([...new Set(refused.map(x => `${x.status} ${x.code} ${x.retryAfter}`))], ['429 GW_ERR_TENANT_BUSY 1'], 'the rest: 429 GW_ERR_TENANT_BUSY, Retry-After 1')
  t.same(b.map(x => x.status), [200, 200, 200], 'tenant b was not held back by a')
  t.same(none.map(x => x.status), [200, 200, 200, 200, 200], 'requests without the header are not counted')
  t.equal(shared.count, 11)
  t.same((await answers(3, { 'x-tenant': 'm-a' })).map(x => x.status), [200, 200, 200], 'a\'s slots came back when its responses ended')

  const status = await (await request(`${adminUrl}/status`)).body.json() as { routes: Array<{ name: string, perTenant: Record<string, unknown> | null }> }
  t.same(status.routes[0]?.perTenant, { header: 'x-tenant', maxConcurrent: 3, tenantsInFlight: 0, busiestInFlight: 0, admitted: 9, refused: 7 })
  const metrics = await (await request(`${adminUrl}/metrics`)).body.text()
  t.match(metrics, /gateway_tenant_refused_total\{route="orders"\} 7/)

  const bad = await loadPolicyFile(await policyFile(policyYaml(route('r', '/', [{ name: 'a', url: shared.url }], '    bulkheads: { header: X-Tenant }\n'))))
  t.match(bad.ok ? '' : bad.issues.map(i => i.message).join('\n'), /a bulkheads block needs pools .*perTenant/, 'a bulkheads block with neither is refused')
})
