/**
 * The active health prober over real sockets, against fault upstreams.
 * Timing checks are lower bounds or generous counts only: CI is a busy
 * 2-core box, so a probe may come late but must never come early or pile up.
 */
import t from 'tap'
import { systemClock } from '../gateway/core/clock.js'
import { Prober, type ProbeConfig, type ProbeFlip, type ProbeTarget } from '../gateway/control/prober.js'
import { startFaultUpstream, type FaultUpstream, type FaultUpstreamOptions } from '../scripts/lib/fault-upstream.js'

interface Teardown { teardown (fn: () => unknown): void }

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** Polls until cond() holds; fails the wait after timeoutMs. */
async function until (cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await sleep(5)
  }
}

async function upstream (t: Teardown, opts: FaultUpstreamOptions = {}): Promise<FaultUpstream> {
  const u = await startFaultUpstream(opts)
  t.teardown(() => u.close())
  return u
}

/** A prober with no start jitter that records its flips; closed when the test ends. */
function prober (t: Teardown, jitter = (): number => 0): { p: Prober, flips: ProbeFlip[] } {
  const flips: ProbeFlip[] = []
  const p = new Prober({ clock: systemClock, onFlip: f => flips.push(f), jitter })
  t.teardown(() => p.close())
  return { p, flips }
}

const config = (over: Partial<ProbeConfig> = {}): ProbeConfig => ({
  path: '/healthz',
  intervalMs: 50,
  timeoutMs: 100,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
  ...over
})

const target = (key: string, origin: string): ProbeTarget => ({ key, origin, hostHeader: 'api.example.test' })

t.test('a healthy target flips unknown → healthy once, after healthyThreshold successes', async t => {
  const u = await upstream(t)
  const { p, flips } = prober(t)
  p.sync([{ target: target('r/a', u.url), config: config({ healthyThreshold: 3 }) }])
  t.equal(p.state('r/a'), 'unknown')
  t.same(p.view('r/a'), { state: 'unknown', consecutiveSuccesses: 0, consecutiveFailures: 0, lastProbeAt: null, lastResult: null })

  await until(() => p.state('r/a') === 'healthy')
  t.ok(u.count >= 3, 'took at least healthyThreshold probes')
  t.equal(flips.length, 1)
  t.match(flips[0], { key: 'r/a', from: 'unknown', to: 'healthy', reason: '3 consecutive successes' })
  t.type(flips[0]?.at, 'number')

  const req = u.received[0]
  t.equal(req?.method, 'GET')
  t.equal(req?.url, '/healthz')
  t.equal(req?.headers.host, 'api.example.test')
  t.equal(req?.headers['user-agent'], 'gateway-health-check')

  // More successes change counters, not state: no further flips.
  const seen = u.count
  await until(() => u.count >= seen + 3)
  t.equal(flips.length, 1, 'onFlip only on a state change')
  const view = p.view('r/a')
  t.equal(view?.lastResult, 'status 200')
  t.ok((view?.consecutiveSuccesses ?? 0) >= 4)
  t.equal(view?.consecutiveFailures, 0)
  t.type(view?.lastProbeAt, 'number')
})

t.test('errorRate 1 (503) flips to unhealthy with the status as reason', async t => {
  const u = await upstream(t, { fault: { errorRate: 1 } })
  const { p, flips } = prober(t)
  p.sync([{ target: target('r/a', u.url), config: config({ unhealthyThreshold: 3 }) }])
  await until(() => p.state('r/a') === 'unhealthy')
  t.ok(u.count >= 3)
  t.same(flips.map(f => [f.from, f.to, f.reason]), [['unknown', 'unhealthy', 'status 503']])
  t.equal(p.view('r/a')?.consecutiveSuccesses, 0)
})

t.test('expectStatus narrows what counts as success', async t => {
  const u = await upstream(t)
  const { p, flips } = prober(t)
  p.sync([{ target: target('r/a', u.url), config: config({ path: '/status/204', expectStatus: [200, 200] }) }])
  await until(() => p.state('r/a') === 'unhealthy')
  t.equal(flips[0]?.reason, 'status 204')
})

t.test('a hanging target fails by timeout with at most one probe in flight', async t => {
  const u = await upstream(t, { fault: { hangRate: 1 } })
  const { p, flips } = prober(t)
  let maxInflight = 0
  const sampler = setInterval(() => { maxInflight = Math.max(maxInflight, u.inflight) }, 2)
  t.teardown(() => clearInterval(sampler))
  p.sync([{ target: target('r/a', u.url), config: config({ intervalMs: 50, timeoutMs: 100 }) }])

  await until(() => p.state('r/a') === 'unhealthy')
  t.same(flips.map(f => [f.from, f.to, f.reason]), [['unknown', 'unhealthy', 'timeout after 100ms']])

  // Each probe takes timeoutMs and the next waits intervalMs after it ends,
  // so over any window there can be at most one probe per 150 ms (+ slack).
  const start = Date.now()
  const before = u.count
  await sleep(1000)
  const elapsed = Date.now() - start
  const probes = u.count - before
  t.ok(probes >= 1, `still probing (${probes} probes)`)
  t.ok(probes <= Math.floor(elapsed / 140) + 2, `${probes} probes in ${elapsed} ms is bounded`)
  t.ok(maxInflight <= 1, `max inflight ${maxInflight}`)
})

t.test('connection refused flips to unhealthy', async t => {
  const gone = await startFaultUpstream()
  await gone.close()
  const { p, flips } = prober(t)
  p.sync([{ target: target('r/a', gone.url), config: config() }])
  await until(() => p.state('r/a') === 'unhealthy')
  t.equal(flips[0]?.reason, 'connect refused')
  t.equal(p.view('r/a')?.lastResult, 'connect refused')
})

t.test('recovery: unhealthy → healthy once the fault is cleared', async t => {
  const u = await upstream(t, { fault: { errorRate: 1 } })
  const { p, flips } = prober(t)
  p.sync([{ target: target('r/a', u.url), config: config() }])
  await until(() => p.state('r/a') === 'unhealthy')
  u.set({})
  await until(() => p.state('r/a') === 'healthy')
  t.same(flips.map(f => [f.from, f.to, f.reason]), [
    ['unknown', 'unhealthy', 'status 503'],
    ['unhealthy', 'healthy', '2 consecutive successes']
  ])
  t.ok((flips[1]?.at ?? 0) >= (flips[0]?.at ?? Infinity), 'flip times are monotonic')
})

t.test('sync keeps unchanged targets, stops removed ones, restarts changed ones', async t => {
  const a = await upstream(t, { name: 'a' })
  const b = await upstream(t, { name: 'b' })
  const c = await upstream(t, { name: 'c' })
  const { p, flips } = prober(t)
  p.sync([
    { target: target('r/a', a.url), config: config() },
    { target: target('r/b', b.url), config: config() },
    { target: target('r/c', c.url), config: config() }
  ])
  await until(() => ['r/a', 'r/b', 'r/c'].every(k => p.state(k) === 'healthy'))
  const successesBefore = p.view('r/a')?.consecutiveSuccesses ?? 0

  // Fresh but equal objects for r/a (as a reload would build), r/b gone, r/c's path changed.
  p.sync([
    { target: target('r/a', a.url), config: config() },
    { target: target('r/c', c.url), config: config({ path: '/ready' }) }
  ])
  t.equal(p.state('r/a'), 'healthy', 'unchanged target keeps its state')
  t.ok((p.view('r/a')?.consecutiveSuccesses ?? 0) >= successesBefore, 'and its counters')
  t.equal(p.view('r/b'), null, 'removed target is forgotten')
  t.equal(p.state('r/b'), 'unknown')
  t.equal(p.state('r/c'), 'unknown', 'changed target starts over')
  t.match(flips.at(-1), { key: 'r/c', from: 'healthy', to: 'unknown', reason: 'target or config changed' })

  await until(() => p.state('r/c') === 'healthy')
  t.equal(c.received.at(-1)?.url, '/ready', 'changed target probes the new path')
  t.equal(flips.filter(f => f.key === 'r/a').length, 1, 'no extra flips for the unchanged target')

  const bCount = b.count
  const aCount = a.count
  await sleep(400)
  t.equal(b.count, bCount, 'removed target is no longer probed')
  t.ok(a.count > aCount, 'unchanged target is still probed')
})

t.test('close() stops all probing and aborts in-flight probes', async t => {
  const ok = await upstream(t, { name: 'ok' })
  const hung = await upstream(t, { name: 'hung', fault: { hangRate: 1 } })
  const flips: ProbeFlip[] = []
  const p = new Prober({ clock: systemClock, onFlip: f => flips.push(f), jitter: () => 0 })
  p.sync([
    { target: target('r/ok', ok.url), config: config() },
    // A long timeout, so only close() can end this probe.
    { target: target('r/hung', hung.url), config: config({ timeoutMs: 60_000 }) }
  ])
  await until(() => p.state('r/ok') === 'healthy' && hung.inflight === 1)
  await p.close()
  await p.close() // idempotent
  await until(() => hung.inflight === 0)
  t.equal(p.state('r/ok'), 'unknown')
  const okCount = ok.count
  const hungCount = hung.count
  const flipCount = flips.length
  await sleep(400)
  t.equal(ok.count, okCount, 'no probes after close')
  t.equal(hung.count, hungCount, 'the aborted probe is not retried')
  t.equal(flips.length, flipCount, 'no flips after close')

  p.sync([{ target: target('r/ok', ok.url), config: config() }])
  await sleep(200)
  t.equal(ok.count, okCount, 'sync after close is ignored')
})

t.test('jitter delays the first probe of a new target', async t => {
  const u = await upstream(t)
  const { p } = prober(t, () => 1)
  const start = Date.now()
  p.sync([{ target: target('r/a', u.url), config: config({ intervalMs: 400 }) }])
  await until(() => u.count >= 1)
  t.ok(Date.now() - start >= 390, 'first probe waited jitter * min(intervalMs, 1000)')
})

t.test('a throwing onFlip is reported and probing goes on', async t => {
  const u = await upstream(t, { fault: { errorRate: 1 } })
  const warnings: string[] = []
  const onWarning = (w: Error): void => { warnings.push(w.message) }
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const p = new Prober({ clock: systemClock, onFlip: () => { throw new Error('listener bug') }, jitter: () => 0 })
  t.teardown(() => p.close())
  p.sync([{ target: target('r/a', u.url), config: config() }])
  await until(() => p.state('r/a') === 'unhealthy')
  u.set({})
  await until(() => p.state('r/a') === 'healthy')
  await until(() => warnings.length >= 2)
  t.match(warnings[0], /onFlip threw: listener bug/)
})
