/**
 * Admission control: the gate alone (injected clock: FIFO slots, a bounded
 * queue, timeouts, a client leaving its place, a reload raising the limit),
 * then over real sockets against a slow upstream: no more than
 * maxConcurrent reach it, the queue absorbs what it can, the rest get 503
 * GW_ERR_OVERLOADED with Retry-After at once, queued requests time out on
 * time, shedding is an event (started, then cleared) and a count in
 * /status and /metrics.
 */
import t from 'tap'
import { Agent, request } from 'undici'
import { AdmissionGate } from '../gateway/admission/gate.js'
import type { Clock } from '../gateway/core/clock.js'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'
import { until } from './helpers/load.js'

function manualClock (): Clock & { advance: (ms: number) => void } {
  let now = 0
  return { now: () => now, wall: () => 1_700_000_000_000 + now, advance: ms => { now += ms } }
}
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

t.test('gate: slots first come first served, a bounded queue, timeouts, a leaver, a raised limit', async t => {
  const clock = manualClock()
  const gate = new AdmissionGate('r', { maxConcurrent: 2, queue: 2, queueTimeoutMs: 40, adaptive: null }, clock)
  t.teardown(() => gate.close())
  t.ok(gate.tryEnter() && gate.tryEnter(), 'two slots')
  t.notOk(gate.tryEnter(), 'no third')
  const order: string[] = []
  const a = gate.wait(() => order.push('a'), () => order.push('a expired'))
  const b = gate.wait(() => order.push('b'), () => order.push('b expired'))
  t.ok(a !== null && b !== null, 'two wait')
  t.equal(gate.wait(() => order.push('c'), () => order.push('c expired')), null, 'the third is refused: queue full')
  t.same(gate.refused, { queueFull: 1, queueTimeout: 0 })
  t.notOk(gate.tryEnter(), 'a free slot would not jump the queue either')
  gate.leave(5)
  t.same(order, ['a'], 'the oldest waiter gets the slot')
  t.equal(gate.inflight, 2)
  gate.cancel(b as NonNullable<typeof b>)
  gate.leave(5)
  t.same(order, ['a'], 'a waiter that left gets nothing')
  t.equal(gate.inflight, 1)
  t.ok(gate.tryEnter(), 'with nobody waiting, a free slot is taken at once')

  const d = gate.wait(() => order.push('d'), () => order.push('d expired'))
  t.ok(d !== null)
  clock.advance(39)
  await sleep(40)
  t.same(order, ['a'], 'not expired before its queueTimeout')
  clock.advance(2)
  await until(() => order.includes('d expired'), 2000, 'the sweep to expire d')
  t.same(gate.refused, { queueFull: 1, queueTimeout: 1 })
  t.equal(gate.waiting, 0)

  gate.wait(() => order.push('e'), () => order.push('e expired'))
  gate.configure({ maxConcurrent: 3, queue: 2, queueTimeoutMs: 40, adaptive: null })
  t.same(order.at(-1), 'e', 'a reload that raises the limit lets a waiter in at once')
  t.equal(gate.inflight, 3)
  t.same({ admitted: gate.admitted, queued: gate.queued }, { admitted: 5, queued: 4 })
})

async function burst (url: string, n: number): Promise<Array<{ status: number, code: string, retryAfter: string, ms: number }>> {
  return await Promise.all(Array.from({ length: n }, async () => {
    const agent = new Agent({ connections: 1 })
    const started = Date.now()
    try {
      const res = await request(url, { dispatcher: agent })
      await res.body.dump()
      return { status: res.statusCode, code: String(res.headers['x-gateway-error'] ?? ''), retryAfter: String(res.headers['retry-after'] ?? ''), ms: Date.now() - started }
    } finally { await agent.close() }
  }))
}

t.test('over sockets: at most maxConcurrent reach the upstream, the queue absorbs, the rest 503 at once; events, status, metrics', async t => {
  const slow = await upstream(t, { name: 'slow', baseline: { latencyMs: 400 } })
  let peak = 0
  const watch = setInterval(() => { peak = Math.max(peak, slow.inflight) }, 5)
  t.teardown(() => clearInterval(watch))
  const { url, adminUrl } = await startGateway(t, policyYaml(route('pay', '/', [{ name: 'slow', url: slow.url }], '    admission: { maxConcurrent: 2, queue: 2, queueTimeout: 5s }\n')))
  const answers = await burst(`${url}/x`, 10)
  const ok = answers.filter(a => a.status === 200)
  const shed = answers.filter(a => a.status === 503)
  t.equal(ok.length, 4, 'two in flight and two from the queue were served')
  t.equal(shed.length, 6, 'six refused')
  t.ok(shed.every(a => a.code === 'GW_ERR_OVERLOADED' && a.retryAfter === '5'), 'coded, with Retry-After (the queue timeout)')
  t.ok(shed.every(a => a.ms < 300), `refused at once (slowest ${Math.max(...shed.map(a => a.ms))} ms), not after waiting`)
  t.ok(peak <= 2, `the upstream never had more than 2 at once (peak ${peak})`)
  t.equal(slow.count, 4, 'the refused never reached it')

  const status = await (await request(`${adminUrl}/status`)).body.json() as any
  t.match(status.routes[0].admission, { maxConcurrent: 2, queue: 2, queueTimeoutMs: 5000, inflight: 0, waiting: 0, admitted: 4, queued: 2, refused: { queueFull: 6, queueTimeout: 0 } })
  t.equal(status.routes[0].responses.shed, 6, 'counted as shed')
  const metrics = await (await request(`${adminUrl}/metrics`)).body.text()
  t.match(metrics, /^gateway_admission_refused_total\{route="pay",reason="queue_full"\} 6$/m)
  t.match(metrics, /^gateway_admission_limit\{route="pay"\} 2$/m)
  const events = async (): Promise<any[]> => ((await (await request(`${adminUrl}/events`)).body.json()) as { events: any[] }).events
  await until(async () => (await events()).some(e => e.kind === 'overload.cleared'), 5000, 'overload.cleared')
  const evs = (await events()).filter(e => e.kind.startsWith('overload.'))
  t.match(evs, [{ kind: 'overload.shedding', route: 'pay', threshold: 2, detail: /GW_ERR_OVERLOADED/ }, { kind: 'overload.cleared', route: 'pay', measured: 6 }], 'shedding started, then cleared, with the count')
  const incidents = await (await request(`${adminUrl}/incidents`)).body.json() as any
  t.match(incidents.incidents, [{ route: 'pay', severity: 'degraded', status: 'resolved' }], 'an incident while it shed')
})

t.test('over sockets: a queued request is refused when its queueTimeout runs out; one that leaves never reaches the upstream', async t => {
  const slow = await upstream(t, { name: 'slow', baseline: { latencyMs: 700 } })
  const { url } = await startGateway(t, policyYaml(route('pay', '/', [{ name: 'slow', url: slow.url }], '    admission: { maxConcurrent: 1, queue: 5, queueTimeout: 200ms }\n')))
  const answers = await burst(`${url}/x`, 3)
  t.same(answers.map(a => a.status).sort(), [200, 503, 503])
  const timedOut = answers.filter(a => a.status === 503)
  t.ok(timedOut.every(a => a.code === 'GW_ERR_OVERLOADED' && a.retryAfter === '1'), 'coded; Retry-After at least 1 s')
  t.ok(timedOut.every(a => a.ms >= 180 && a.ms < 650), `refused after about 200 ms (${timedOut.map(a => a.ms).join(', ')} ms), before the slot came free`)

  slow.resetCounts()
  const first = request(`${url}/first`).then(async r => { await r.body.dump(); return r.statusCode })
  await until(() => slow.inflight === 1, 2000, 'the first in flight')
  const ac = new AbortController()
  const leaver = request(`${url}/leaver`, { signal: ac.signal }).then(() => 'answered', () => 'aborted')
  await sleep(50)
  ac.abort()
  t.equal(await leaver, 'aborted')
  t.equal(await first, 200)
  const third = await request(`${url}/third`)
  await third.body.dump()
  t.equal(third.statusCode, 200)
  t.same(slow.received.map(r => r.url), ['/first', '/third'], 'the request that left the queue was never sent')
})

t.test('priorities: low-priority traffic is shed from half the gateway-wide limit, critical keeps the rest', async t => {
  const shared = await upstream(t, { name: 'shared', baseline: { latencyMs: 500 } })
  const yaml = policyYaml(
    route('pay', '/pay', [{ name: 'shared', url: shared.url }], '    priority: critical\n') +
    route('feed', '/feed', [{ name: 'shared', url: shared.url }], '    priority: low\n'),
    'overload: { maxConcurrent: 10 }\n')
  const { url, adminUrl } = await startGateway(t, yaml)
  const feed = burst(`${url}/feed`, 20)
  await until(() => shared.inflight >= 5, 3000, 'five feed requests in flight')
  await sleep(50)
  const pay = await Promise.all([burst(`${url}/pay/charge`, 5), sleep(0)]).then(([a]) => a)
  const feedAnswers = await feed
  t.equal(feedAnswers.filter(a => a.status === 200).length, 5, 'low priority: served up to 50 % of the limit')
  const shedFeed = feedAnswers.filter(a => a.status === 503)
  t.equal(shedFeed.length, 15)
  t.ok(shedFeed.every(a => a.code === 'GW_ERR_SHED' && a.retryAfter === '1'), 'shed with GW_ERR_SHED and Retry-After')
  t.same(pay.map(a => a.status), [200, 200, 200, 200, 200], 'critical traffic still had its capacity')
  const status = await (await request(`${adminUrl}/status`)).body.json() as any
  t.match(status.overload, { maxConcurrent: 10, shedAt: { low: 0.5, normal: 0.75, high: 0.9, critical: 1 }, inflight: 0, refused: { low: 15, critical: 0 }, admitted: { low: 5, critical: 5 } })
  t.match(status.routes.map((r: any) => r.priority), ['critical', 'low'])
  const metrics = await (await request(`${adminUrl}/metrics`)).body.text()
  t.match(metrics, /^gateway_overload_refused_total\{priority="low"\} 15$/m)
  t.match(metrics, /^gateway_overload_limit\{priority="low"\} 5$/m)
  const events = ((await (await request(`${adminUrl}/events`)).body.json()) as { events: any[] }).events
  t.match(events.filter(e => e.kind === 'overload.shedding'), [{ route: 'feed', detail: /low-priority.*GW_ERR_SHED/ }], 'the low-priority route shed, the critical one did not')

  // At the limit itself even critical traffic is refused.
  const hold = burst(`${url}/pay/hold`, 10)
  await until(() => shared.inflight >= 10, 3000, 'ten in flight')
  const over = await burst(`${url}/pay/one-more`, 1)
  t.match(over, [{ status: 503, code: 'GW_ERR_SHED' }], 'critical refused at maxConcurrent')
  t.same((await hold).map(a => a.status), Array(10).fill(200))
})

t.test('priorities: a critical request at the limit waits for a slot (overload.queueTimeout) instead of being refused', async t => {
  const u = await upstream(t, { name: 'u', baseline: { latencyMs: 300 } })
  const yaml = policyYaml(route('pay', '/pay', [{ name: 'u', url: u.url }], '    priority: critical\n') + route('feed', '/feed', [{ name: 'u', url: u.url }], '    priority: low\n'),
    'overload: { maxConcurrent: 2, queueTimeout: 2s }\n')
  const { url, adminUrl } = await startGateway(t, yaml)
  const answers = await burst(`${url}/pay/x`, 4)
  t.same(answers.map(a => a.status), [200, 200, 200, 200], 'all four critical requests served: two waited for a slot')
  const waited = answers.filter(a => a.ms >= 250).length
  t.ok(waited >= 2, `${waited} of them took a second turn`)
  const low = await burst(`${url}/feed/x`, 1)
  t.equal(low[0]?.status, 200, 'with nothing in flight a low request goes through')
  const status = await (await request(`${adminUrl}/status`)).body.json() as any
  t.match(status.overload, { queue: 2, queueTimeoutMs: 2000, queued: 2, waiting: 0, refused: { critical: 0 } })
})

t.test('policy: shedAt must shed lower priorities first; admission numbers are checked', async t => {
  const { loadPolicyFile } = await import('../gateway/policy/load.js')
  const { policyFile } = await import('./helpers/harness.js')
  const bad = await policyFile(policyYaml(route('r', '/', [{ name: 'a', url: 'http://127.0.0.1:9' }], '    admission: { maxConcurrent: 0 }\n    priority: urgent\n'), 'overload: { maxConcurrent: 10, shedAt: { low: 80%, normal: 60% } }\n'))
  const r = await loadPolicyFile(bad)
  t.equal(r.ok, false)
  const text = r.ok ? '' : r.issues.map(i => `${i.path} ${i.message}`).join('\n')
  t.match(text, /admission\.maxConcurrent/, 'maxConcurrent at least 1')
  t.match(text, /priority/, 'an unknown priority')
  const order = await loadPolicyFile(await policyFile(policyYaml(route('r', '/', [{ name: 'a', url: 'http://127.0.0.1:9' }]), 'overload: { maxConcurrent: 10, shedAt: { low: 80%, normal: 60% } }\n')))
  t.equal(order.ok, false)
  t.match(order.ok ? '' : order.issues.map(i => i.message).join('\n'), /low \(80%\) would be shed after normal \(60%\)/)
})

t.test('a tenant bulkhead (a header-matched route with its own pool and limits): its flood is refused there, other tenants are served', async t => {
  const live = await upstream(t, { name: 'live', baseline: { latencyMs: 300 } })
  const shared = await upstream(t, { name: 'shared', baseline: { latencyMs: 20 } })
  const yaml = policyYaml(
    route('live-stream', '/orders', [{ name: 'live', url: live.url }], '    admission: { maxConcurrent: 4, queue: 0 }\n    rateLimits:\n      - { name: tenant, key: route, limit: 1000, window: 1s, scope: local }\n')
      .replace('      pathPrefix: /orders\n', '      pathPrefix: /orders\n      headers: { x-tenant: live-stream }\n') +
    route('orders', '/orders', [{ name: 'shared', url: shared.url }]), '')
  const { url } = await startGateway(t, yaml)
  const flood = Promise.all(Array.from({ length: 40 }, async () => {
    const agent = new Agent({ connections: 1 })
    try {
      const res = await request(`${url}/orders/new`, { dispatcher: agent, headers: { 'x-tenant': 'live-stream' } })
      await res.body.dump()
      return res.statusCode
    } finally { await agent.close() }
  }))
  const others = await burst(`${url}/orders/new`, 20)
  const floodStatuses = await flood
  t.equal(floodStatuses.filter(s => s === 200).length, 4, 'the flooding tenant got its bulkhead\'s four slots')
  t.equal(floodStatuses.filter(s => s === 503).length, 36, 'and 503 for the rest')
  t.same([...new Set(others.map(a => a.status))], [200], 'every other tenant was served')
  t.equal(shared.count, 20, 'on their own pool')
  t.ok(live.count <= 4, 'the flood never reached past its bulkhead')
})

t.test('adaptive limit: latency ten times its lowest brings the limit down to minLimit; healthy latency while busy lets it grow back', async t => {
  const { AdaptiveLimits, ADAPTIVE_INTERVAL_MS } = await import('../gateway/control/adaptive-limit.js')
  const gate = {
    config: { maxConcurrent: 100, queue: 0, queueTimeoutMs: 1000, adaptive: { minLimit: 4, tolerance: 2 } },
    inflight: 0, waiting: 0, admitted: 0, queued: 0, refused: { queueFull: 0, queueTimeout: 0 },
    limit: 100, heldCount: 0, heldMs: 0, peakInflight: 0,
    setLimit (n: number) { this.limit = n }
  }
  const route = { config: { name: 'r' }, admission: gate } as any
  const al = new AdaptiveLimits()
  let now = 0
  const interval = (latencyMs: number, busy: boolean): any[] => {
    gate.heldCount = 50
    gate.heldMs = 50 * latencyMs
    gate.peakInflight = busy ? gate.limit : 0
    now += ADAPTIVE_INTERVAL_MS
    return al.tick([route], now)
  }
  al.tick([route], now)
  for (let i = 0; i < 5; i++) interval(20, true)
  t.equal(gate.limit, 100, 'healthy at the ceiling: stays at maxConcurrent')
  const events: any[] = []
  for (let i = 0; i < 40; i++) events.push(...interval(200, true))
  t.ok(gate.limit <= 12, `ten times slower: the limit came down to ${gate.limit} (from 100; minLimit 4)`)
  t.ok(gate.limit >= 4, 'never below minLimit')
  t.ok(events.length >= 2 && events.every(e => e.kind === 'overload.limit' && e.after < e.before), `${events.length} overload.limit events, each lower`)
  t.match(events[0], { route: 'r', before: 100, measured: 200 })
  t.ok(events[0].threshold >= 40 && events[0].threshold < 45, `threshold ${events[0].threshold as number}: 2 × the lowest latency (20 ms, drifting up 1 % per interval)`)
  const low = gate.limit
  for (let i = 0; i < 20; i++) interval(20, false)
  t.equal(gate.limit, low, 'healthy but idle: no evidence to grow on')
  for (let i = 0; i < 120; i++) interval(20, true)
  t.ok(gate.limit > 40, `healthy and busy: it grew back to ${gate.limit}`)
  gate.heldCount = 3
  now += ADAPTIVE_INTERVAL_MS
  const before = gate.limit
  al.tick([route], now)
  t.equal(gate.limit, before, 'too few samples: no change')
})

t.test('adaptive limit over sockets: the upstream slows down under load, the route\'s limit comes down (status, metrics, event)', async t => {
  const u = await upstream(t, { name: 'u', baseline: { latencyMs: 20 } })
  const { url, adminUrl } = await startGateway(t, policyYaml(route('pay', '/', [{ name: 'u', url: u.url }],
    '    admission: { maxConcurrent: 40, queue: 500, queueTimeout: 10s, adaptive: { minLimit: 2 } }\n')))
  const { paced } = await import('./helpers/load.js')
  const warm = paced(`${url}/x`, 100, 1500)
  await warm
  const status = async (): Promise<any> => await (await request(`${adminUrl}/status`)).body.json()
  t.equal((await status()).routes[0].admission.limit, 40, 'healthy: the limit stays at maxConcurrent')
  u.set({ latencyMs: 400 })
  const load = paced(`${url}/x`, 100, 6000)
  await until(async () => (await status()).routes[0].admission.limit < 30, 8000, 'the adaptive limit to come down')
  const s = await status()
  t.ok(s.routes[0].admission.limit < 30, `limit ${s.routes[0].admission.limit as number} (maxConcurrent 40) with the upstream 20× slower`)
  const metrics = await (await request(`${adminUrl}/metrics`)).body.text()
  t.match(metrics, new RegExp(`^gateway_admission_limit\\{route="pay"\\} ${s.routes[0].admission.limit as number}$`, 'm'))
  u.set({})
  await load
  const events = ((await (await request(`${adminUrl}/events`)).body.json()) as { events: any[] }).events
  t.ok(events.some(e => e.kind === 'overload.limit' && e.route === 'pay' && e.after < e.before), 'an overload.limit event')
})
