/**
 * policies/default.yaml (what `npm start` runs) shows self-healing: the README
 * walkthrough, as a test. Its content is used as is, except that in a temp
 * copy the listener and admin ports become 0 and the upstream URLs point at
 * demo services started on free ports, so this never clashes with a running
 * `npm start` or with other tests.
 *
 * Under the walkthrough's load (`npm run load`: 25 POST /pay/checkout per
 * second), through the demo services' HTTP fault API as the README does it:
 * - `{"latencyMs":5000}` on pay-primary → shift.step within a few seconds,
 *   up to 90 % on pay-backup, no client errors; `DELETE /_fault` → ramp back
 *   to shift.restored;
 * - `{"errorRate":0.5,"errorStatus":503}` → breaker.open, traffic on
 *   pay-backup; healed → breaker.close.
 * The two scenarios run at the same time on separate gateways (about 20 s in
 * all). Bounds are generous (a busy 2-core box): the policy comments promise
 * ≈ 1.5 s to the first step and ≈ 15 s to restored.
 */
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parseDocument } from 'yaml'
import { request } from 'undici'
import { Gateway } from '../gateway/app/gateway.js'
import type { GatewayEvent } from '../gateway/events/types.js'
import { startDemoUpstreams, DEMO_NAMES, DEMO_PORTS, type DemoName, type DemoUpstreams } from '../scripts/demo-upstreams.js'
import { runOpenLoop, type RequestResult } from '../scripts/lib/open-loop.js'
import { policyFile, type Teardown } from './helpers/harness.js'
import { until } from './helpers/load.js'

const DEFAULT_POLICY = fileURLToPath(new URL('../policies/default.yaml', import.meta.url))
const RATE = 25

const FREE_PORTS = Object.fromEntries(DEMO_NAMES.map(n => [n, 0])) as Record<DemoName, number>

interface Upstream { name: string, url: string }
interface RouteDoc { name: string, upstreams: Upstream[] }

t.test('default.yaml keeps the addresses the README and npm start rely on', async t => {
  const doc = parseDocument(await readFile(DEFAULT_POLICY, 'utf8')).toJS() as {
    listeners: Array<{ host: string, port: number }>
    admin: { host: string, port: number }
    routes: RouteDoc[]
  }
  t.same(doc.listeners.map(l => `${l.host}:${l.port}`), ['0.0.0.0:8080'], 'public listener on 0.0.0.0:8080')
  t.same(`${doc.admin.host}:${doc.admin.port}`, '127.0.0.1:9901', 'admin API on 127.0.0.1:9901')
  const urls = Object.fromEntries(doc.routes.flatMap(r => r.upstreams.map(u => [u.name, u.url])))
  t.same(urls, Object.fromEntries(DEMO_NAMES.map(n => [n, `http://127.0.0.1:${DEMO_PORTS[n]}`])), 'one upstream per demo service, on its fixed port')
})

/** Demo services on free ports and a gateway on a temp copy of default.yaml pointing at them. */
async function start (t: Teardown): Promise<{ gw: Gateway, url: string, demo: DemoUpstreams }> {
  const demo = await startDemoUpstreams({ ports: FREE_PORTS })
  t.teardown(async () => await demo.close())
  const doc = parseDocument(await readFile(DEFAULT_POLICY, 'utf8'))
  doc.setIn(['listeners', 0, 'host'], '127.0.0.1')
  doc.setIn(['listeners', 0, 'port'], 0)
  doc.setIn(['admin', 'port'], 0)
  const routes = (doc.toJS() as { routes: RouteDoc[] }).routes
  routes.forEach((r, i) => r.upstreams.forEach((u, j) => {
    doc.setIn(['routes', i, 'upstreams', j, 'url'], demo.upstreams[u.name as DemoName].url)
  }))
  const gw = await Gateway.start({ policyFile: await policyFile(doc.toString()), watch: false })
  t.teardown(async () => await gw.close())
  const port = gw.addresses().listeners[0]?.port
  return { gw, url: `http://127.0.0.1:${String(port)}`, demo }
}

/** The walkthrough's load, until stop() (which resolves with every answer). */
function load (t: Teardown, url: string): { answers: RequestResult[], stop: () => Promise<RequestResult[]> } {
  const abort = new AbortController()
  const answers: RequestResult[] = []
  const done = runOpenLoop({ url, path: '/pay/checkout', ratePerSec: RATE, durationMs: 60_000, signal: abort.signal, timeoutMs: 15_000, onResult: r => { answers.push(r) } })
  const stop = async (): Promise<RequestResult[]> => { abort.abort(); return await done }
  t.teardown(stop) // also when an assertion throws
  return { answers, stop }
}

/** The demo services' fault API, over HTTP as in the README. */
async function fault (upstreamUrl: string, method: 'POST' | 'DELETE', body?: object): Promise<void> {
  const res = await request(`${upstreamUrl}/_fault`, { method, body: body === undefined ? undefined : JSON.stringify(body) })
  await res.body.text()
  if (res.statusCode !== 200) throw new Error(`fault API answered ${res.statusCode}`)
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
const first = (gw: Gateway, kind: GatewayEvent['kind'], since = 0, upstream?: string): GatewayEvent | undefined =>
  gw.events.since(since).find(e => e.kind === kind && (upstream === undefined || e.upstream === upstream))

t.test('walkthrough', { jobs: 2 }, async t => {
  t.test('5 s latency on pay-primary: shift.step within seconds, ramps back after healing', async t => {
    const { gw, url, demo } = await start(t)
    const primary = demo.upstreams['pay-primary'].url
    const traffic = load(t, url)
    await sleep(1500)

    await fault(primary, 'POST', { latencyMs: 5000 })
    const spikeAt = gw.events.lastSeq
    const spikeMs = Date.now()
    await until(() => first(gw, 'shift.step', spikeAt) !== undefined, 6000, 'shift.step after the latency fault')
    const firstStepMs = Date.now() - spikeMs
    t.ok(firstStepMs < 6000, `first shift.step ${firstStepMs} ms after the fault (the policy aims at ≈ 1.5 s)`)
    t.equal(first(gw, 'shift.step', spikeAt)?.route, 'payments')

    await until(() => gw.runtime.routes[0]?.view.backupShare === 0.9, 6000, '90 % on the backup')
    const route = (gw.status() as { routes: Array<{ name: string, upstreams: Array<{ name: string, share: number }> }> }).routes[0]
    t.same(route?.upstreams.map(u => [u.name, u.share]), [['pay-primary', 0.1], ['pay-backup', 0.9]], '/status: the probe share stays on pay-primary')
    const shiftedAt = traffic.answers.length
    await sleep(1000)
    const onBackup = traffic.answers.slice(shiftedAt).filter(a => a.upstream === 'pay-backup').length
    t.ok(onBackup >= RATE / 2, `pay-backup answers the shifted charges (${onBackup} in 1 s)`)

    await fault(primary, 'DELETE')
    const healAt = gw.events.lastSeq
    const healMs = Date.now()
    await until(() => first(gw, 'shift.restored', healAt) !== undefined, 25_000, 'shift.restored after healing')
    const restoreMs = Date.now() - healMs
    t.ok(restoreMs < 25_000, `shift.restored ${restoreMs} ms after healing (the policy aims at ≈ 15 s)`)
    const ramps = gw.events.since(healAt).filter(e => e.kind === 'shift.ramp')
    t.ok(ramps.length >= 2, `ramped back step by step (${ramps.map(e => e.after).join(' → ')})`)
    t.equal(gw.runtime.routes[0]?.view.backupShare, 0, 'all traffic back on pay-primary')

    const answers = await traffic.stop()
    const errors = answers.filter(a => a.status !== 200)
    t.equal(errors.length, 0, `no client errors (${answers.length} charges)`)
  })

  t.test('50 % 503s on pay-primary: breaker.open, traffic on the backup, closes after healing', async t => {
    const { gw, url, demo } = await start(t)
    const primary = demo.upstreams['pay-primary'].url
    const traffic = load(t, url)
    await sleep(1500)

    const faultAt = gw.events.lastSeq
    await fault(primary, 'POST', { errorRate: 0.5, errorStatus: 503 })
    await until(() => first(gw, 'breaker.open', faultAt, 'pay-primary') !== undefined, 10_000, 'breaker.open after the error fault')
    t.pass(`breaker.open: ${first(gw, 'breaker.open', faultAt)?.detail ?? ''}`)
    const openAt = traffic.answers.length
    await sleep(1000)
    const afterOpen = traffic.answers.slice(openAt)
    t.ok(afterOpen.filter(a => a.upstream === 'pay-backup' && a.status === 200).length >= RATE / 2,
      `while open, pay-backup answers (${afterOpen.filter(a => a.upstream === 'pay-backup').length} of ${afterOpen.length} in 1 s)`)
    // A charge the primary answered with 503 may have been processed: not retried.
    t.ok(gw.events.since(faultAt).some(e => e.kind === 'attempt.failed' && e.after === 'not retried'), 'a maybe-processed POST is not retried')

    await fault(primary, 'DELETE')
    const healAt = gw.events.lastSeq
    await until(() => first(gw, 'breaker.close', healAt, 'pay-primary') !== undefined, 20_000, 'breaker.close after healing')
    await until(() => gw.runtime.routes[0]?.upstreams[0]?.available === true, 5000, 'pay-primary available')
    // The failure rate also shifted the route: wait for its ramp-back.
    await until(() => gw.runtime.routes[0]?.view.backupShare === 0, 40_000, 'shift ramped back')
    const closedAt = traffic.answers.length
    await sleep(1000)
    t.ok(traffic.answers.slice(closedAt).filter(a => a.upstream === 'pay-primary' && a.status === 200).length >= RATE / 2, 'pay-primary answers again')
    await traffic.stop()
  })
})

t.test('README: the SMS sent twice within the window reaches the provider once; another template goes through', async t => {
  const { gw, url, demo } = await start(t)
  const sms = demo.upstreams['sms-provider']
  const send = async (body: object): Promise<{ status: number, replayed: boolean, upstream: string }> => {
    const res = await request(`${url}/sms/send`, { method: 'POST', body: JSON.stringify(body) })
    await res.body.text()
    return { status: res.statusCode, replayed: res.headers['idempotency-replayed'] === 'true', upstream: String(res.headers['x-gateway-upstream']) }
  }
  const firstSend = await send({ phone: '+49 170 1234567', template: 'sale-1212', text: '12.12: 30% off' })
  t.same(firstSend, { status: 200, replayed: false, upstream: 'sms-provider' })
  const again = await send({ phone: '49-170-1234567', template: 'SALE-1212', text: '12.12: 30% off!' })
  t.same([again.status, again.replayed], [200, true], 'the same phone and template, written differently: replayed')
  const other = await send({ phone: '+49 170 1234567', template: 'welcome' })
  t.equal(other.replayed, false, 'another template is another message')
  const noPhone = await send({ template: 'sale-1212' })
  t.equal(noPhone.status, 200, 'no phone: forwarded as it is (keyMissing: forward)')
  t.equal(sms.count, 3, 'the provider got three sends of four')
  const d = (gw.status() as any).routes.find((r: { name: string }) => r.name === 'notifications').delivery
  t.same([d.replays, d.keyMissing], [1, 1])
})
