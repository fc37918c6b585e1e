/**
 * Self-healing, second round, over real sockets with the README's shift
 * defaults (threshold 1s, recover.threshold 500ms; only the ramp-back rails
 * are shortened to keep the test short): the stall signal moves traffic
 * before any quantile can pass the threshold, a black hole is seen the same
 * way, a 503 storm moves traffic on the failure rate, probes make the
 * backup known good (one step to 100 %) and watch the emptied primary so it
 * comes back with minShare 0. Bounds are loose for a busy 2-core machine;
 * the tight figures are `npm run drills`.
 */
import t from 'tap'
import { Agent } from 'undici'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'
import { hit, until, type Answer } from './helpers/load.js'
import { loadPolicyText } from '../gateway/policy/load.js'

const SHIFT = `    shift:
      threshold: 1s
      cooldown: 1s
      recover: { threshold: 500ms, for: 1s, step: 50%, interval: 250ms }
`

async function setup (t: Parameters<typeof upstream>[0], extra = ''): Promise<{ url: string, gw: Awaited<ReturnType<typeof startGateway>>['gw'], primary: Awaited<ReturnType<typeof upstream>>, backup: Awaited<ReturnType<typeof upstream>> }> {
  const primary = await upstream(t, { name: 'p', baseline: { latencyMs: 50 } })
  const backup = await upstream(t, { name: 'b', baseline: { latencyMs: 50 } })
  const yaml = policyYaml(route('pay', '/', [{ name: 'p', url: primary.url }, { name: 'b', url: backup.url, role: 'backup' }], SHIFT + extra))
  const { url, gw } = await startGateway(t, yaml)
  return { url, gw, primary, backup }
}

/** ~100 req/s open loop until stopped; answers collected with their send time. */
function load (t: { teardown (fn: () => unknown): void }, url: string): { answers: Array<Answer & { sentAt: number }>, stop: () => Promise<void> } {
  const agent = new Agent({ connections: 1024 })
  const answers: Array<Answer & { sentAt: number }> = []
  const pending = new Set<Promise<void>>()
  let stopped = false
  const timer = setInterval(() => {
    if (stopped) return
    const sentAt = Date.now()
    const p = hit(`${url}/pay`, agent).then(a => { answers.push({ ...a, sentAt }) }, () => { answers.push({ status: 0, upstream: '', ms: Date.now() - sentAt, sentAt }) })
    pending.add(p)
    void p.finally(() => pending.delete(p))
  }, 10)
  const stop = async (): Promise<void> => {
    stopped = true
    clearInterval(timer)
    await Promise.all(pending)
    await agent.close()
  }
  t.teardown(async () => { stopped = true; clearInterval(timer); await agent.destroy() })
  return { answers, stop }
}

/** Waits until the backup has been probed a few times (its word is in), then lets the route settle. */
async function backupProbed (gw: Awaited<ReturnType<typeof startGateway>>['gw'], settleMs = 1000): Promise<void> {
  await until(() => (gw.status() as any).routes[0].upstreams[1].probes.sent >= 4, 5000, 'backup probed')
  await new Promise(resolve => setTimeout(resolve, settleMs))
}

const firstArrivalAfter = (u: Awaited<ReturnType<typeof upstream>>, at: number): number | null =>
  u.received.find(r => r.at >= at && r.url.startsWith('/pay'))?.at ?? null

t.test('5 s spike: the stall moves everything to the known-good backup in about a second, nobody waits on the primary after, probes bring it back', async t => {
  const { url, gw, primary, backup } = await setup(t)
  const l = load(t, url)
  await backupProbed(gw, 1500)
  const status = gw.status() as any
  t.equal(status.routes[0].upstreams[1].total['2xx'], 0, 'the backup got no real traffic before the incident…')
  t.equal(backup.count, 0, '(as the backup itself counts)')
  t.ok(status.routes[0].upstreams[1].probes.sent >= 4, '…but was probed (shown apart in /status)')

  const spikeAt = Date.now()
  primary.set({ latencyMs: 5000 })
  await until(() => firstArrivalAfter(backup, spikeAt) !== null, 5000, 'first request at the backup')
  const firstShift = (firstArrivalAfter(backup, spikeAt) as number) - spikeAt
  t.ok(firstShift < 1600, `first request at the backup ${firstShift} ms after the spike (drill target ≤ 1 s)`)
  await until(() => gw.events.since(0).some(e => e.kind === 'shift.step' && e.after === 1), 3000, 'all moved')
  const steps = gw.events.since(0).filter(e => e.kind === 'shift.step')
  // One step to 100 % when the backup's probe, sent at the first sign of
  // trouble, is back by the trip; else a trial step first, then 100 % as
  // soon as it is.
  t.ok(steps.length <= 2, `${steps.length} step(s) to 100 %: minShare is 0 with probes`)
  t.match(steps.at(-1), { after: 1 })
  t.match(steps.at(-1)?.detail, /known good/)
  t.match(steps[0]?.detail, /stalled|p95/)

  const settledAt = Date.now() + 500
  const probesBefore = primary.probes
  await new Promise(resolve => setTimeout(resolve, 3000))
  const paySince = primary.received.filter(r => r.at >= settledAt && r.url.startsWith('/pay')).length
  t.equal(paySince, 0, 'no real request reaches the slow primary once shifted')
  // One probe in flight at a time: the next goes out once the slow one is answered.
  await until(() => primary.probes > probesBefore, 8000, 'the next probe of the slow primary')
  t.pass('the primary is still probed')

  primary.set({})
  await until(() => gw.events.since(0).some(e => e.kind === 'shift.restored'), 20_000, 'restored by the probes')
  await l.stop()
  const afterSettle = l.answers.filter(a => a.sentAt >= settledAt)
  t.ok(afterSettle.length > 100)
  const slow = afterSettle.filter(a => a.ms > 1000 && a.sentAt < settledAt + 3000)
  t.equal(slow.length, 0, 'no client sent after the shift settled waited over 1 s')
  t.equal(l.answers.filter(a => a.status !== 200).length, 0, 'no client error')
})

t.test('black hole: accepted, never answered — seen as fast as a slow primary', async t => {
  const { url, gw, primary, backup } = await setup(t, '    timeouts: { responseHeaders: 3s }\n')
  const l = load(t, url)
  await backupProbed(gw)
  const at = Date.now()
  primary.set({ hangRate: 1 })
  await until(() => firstArrivalAfter(backup, at) !== null, 5000, 'first request at the backup')
  const shiftMs = (firstArrivalAfter(backup, at) as number) - at
  t.ok(shiftMs < 1600, `shifted ${shiftMs} ms after the black hole opened`)
  await new Promise(resolve => setTimeout(resolve, 1000))
  const caught = primary.received.filter(r => r.at >= at && r.url.startsWith('/pay')).length
  t.ok(caught < 200, `${caught} requests caught in the black hole (≈ ${Math.round(caught / 100 * 1000)} ms of traffic)`)
  primary.set({})
  await l.stop()
  t.equal(l.answers.filter(a => a.status !== 200 && a.status !== 504).length, 0, 'only the caught requests fail (504)')
})

t.test('30 % of answers are 503: the failure rate moves traffic; latency never breached', async t => {
  const { url, gw, primary, backup } = await setup(t)
  const l = load(t, url)
  await backupProbed(gw)
  const at = Date.now()
  primary.set({ errorRate: 0.3, errorStatus: 503 })
  await until(() => firstArrivalAfter(backup, at) !== null, 5000, 'first request at the backup')
  t.ok((firstArrivalAfter(backup, at) as number) - at < 1500, 'shifted within 1.5 s')
  t.match(gw.events.since(0).find(e => e.kind === 'shift.step')?.detail, /failure rate/)
  await new Promise(resolve => setTimeout(resolve, 3000))
  primary.set({})
  await until(() => gw.events.since(0).some(e => e.kind === 'shift.restored'), 20_000, 'restored once the probes stop failing')
  await l.stop()
  const during = l.answers.filter(a => a.sentAt >= at)
  const failed = during.filter(a => a.status >= 500).length
  t.ok(failed / during.length < 0.05, `${failed} of ${during.length} clients got a 5xx`)
})

t.test('backup as slow as the primary: its probe sent at the first sign of trouble is not back, so only a trial step, then hold', async t => {
  const { url, gw, primary, backup } = await setup(t)
  const l = load(t, url)
  await backupProbed(gw)
  const at = Date.now()
  primary.set({ latencyMs: 5000 })
  backup.set({ latencyMs: 5000 })
  await until(() => gw.events.since(0).some(e => e.kind === 'shift.hold'), 5000, 'hold')
  await new Promise(resolve => setTimeout(resolve, 1000))
  const steps = gw.events.since(0).filter(e => e.kind === 'shift.step')
  t.same(steps.map(e => e.after), [0.25], 'one trial step of 25 %, no more')
  t.match(gw.events.since(0).find(e => e.kind === 'shift.hold')?.detail, /backups are slow too/)
  const toBackup = backup.received.filter(r => r.at >= at && r.url.startsWith('/pay')).length
  const toPrimary = primary.received.filter(r => r.at >= at && r.url.startsWith('/pay')).length
  t.ok(toBackup / (toBackup + toPrimary) < 0.35, `${toBackup} of ${toBackup + toPrimary} on the backup`)
  primary.set({})
  backup.set({})
  await l.stop()
  t.equal(l.answers.filter(a => a.status !== 200).length, 0, 'no client error')
})

t.test('primary killed: its in-flight requests reset, new ones are refused — failover\'s case, no shift; back as soon as it listens', async t => {
  const { url, gw, primary, backup } = await setup(t, '    retry: { on: [connect-failure] }\n    healthCheck: { path: /healthz, interval: 250ms }\n')
  const l = load(t, url)
  await backupProbed(gw)
  primary.set({ latencyMs: 300 }) // a pile of requests in flight to reset at the kill
  await new Promise(resolve => setTimeout(resolve, 600))
  await primary.setDown(true)
  await new Promise(resolve => setTimeout(resolve, 2000))
  primary.set({})
  await primary.setDown(false)
  const upAt = Date.now()
  await until(() => primary.received.some(r => r.at >= upAt && r.url.startsWith('/pay')), 5000, 'the primary serves again')
  await new Promise(resolve => setTimeout(resolve, 2000))
  await l.stop()
  const shifts = gw.events.since(0).filter(e => e.kind.startsWith('shift.'))
  t.same(shifts.map(e => [e.kind, e.detail]), [], 'the resets of the killed connections did not trip the failure rate')
  const back = primary.received.filter(r => r.at >= upAt + 1000 && r.url.startsWith('/pay')).length
  const onBackup = backup.received.filter(r => r.at >= upAt + 1000 && r.url.startsWith('/pay')).length
  t.ok(back > onBackup, `after the restart the primary has the traffic again (${back} vs ${onBackup} on the backup)`)
})

t.test('shift defaults: probes on with minShare 0 (health check path, else /); probes off keep 5 %; errors and stall on', async t => {
  const doc = (shift: string, hc = ''): string => policyYaml(route('pay', '/', [{ name: 'p', url: 'http://127.0.0.1:1' }, { name: 'b', url: 'http://127.0.0.1:2', role: 'backup' }], `    shift: { threshold: 1s${shift} }\n${hc}`))
  const cfg = (text: string): any => {
    const r = loadPolicyText('p.yaml', text, {})
    if (!r.ok) throw new Error(JSON.stringify(r.issues))
    return r.snapshot.routes[0]?.shift
  }
  const d = cfg(doc(''))
  t.match(d, { minShare: 0, max: 1, forMs: 100, probe: { path: '/', intervalMs: 500, timeoutMs: 5000 }, errors: { rate: 0.2, recoverRate: 0.1, minSamples: 20 }, stall: { factor: 2, minStuck: 5 } })
  t.equal(cfg(doc('', '    healthCheck: { path: /healthz }\n')).probe.path, '/healthz')
  t.match(cfg(doc(', probe: false, errors: false, stall: false')), { minShare: 0.05, max: 0.95, probe: null, errors: null, stall: null })
  const bad = loadPolicyText('p.yaml', doc(', errors: { rate: 10%, recoverRate: 10% }'), {})
  t.notOk(bad.ok, 'recoverRate must be below rate')
})
