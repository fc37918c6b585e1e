/**
 * Incidents: events grouped per route from the first condition to the last
 * one cleared (unit, on a synthetic event stream), and over real sockets a
 * latency spike that becomes one incident with its JSON and Markdown report.
 */
import t from 'tap'
import { request } from 'undici'
import { IncidentTracker, renderReport } from '../gateway/incidents/index.js'
import { ResponseTally } from '../gateway/core/response-tally.js'
import type { EventDraft, GatewayEvent } from '../gateway/events/types.js'
import { upstream, startGateway, policyYaml, route, shiftRoute } from './helpers/harness.js'
import { steadyLoad, until } from './helpers/load.js'
import { closedPort } from './helpers/net.js'
import { runCli } from '../gateway/cli/commands.js'

function stream (): { push: (d: Omit<EventDraft, 'enforced' | 'detail'> & Partial<EventDraft>, tMs: number) => GatewayEvent, events: GatewayEvent[] } {
  let seq = 0
  const events: GatewayEvent[] = []
  return {
    events,
    push: (d, tMs) => {
      const e: GatewayEvent = { enforced: true, detail: d.kind, ...d, seq: ++seq, at: new Date(Date.UTC(2026, 11, 3, 10, 0, 0) + tMs).toISOString(), t: tMs, policyVersion: 'v1' }
      events.push(e)
      return e
    }
  }
}

t.test('one incident from the first condition to the last cleared; severity is the worst seen', async t => {
  let available = true
  const tally = new ResponseTally()
  const tr = new IncidentTracker(() => available, name => name === 'pay' ? tally : null)
  const s = stream()
  const feed = (d: Parameters<typeof s.push>[0], tMs: number): void => { tr.onEvent(s.push(d, tMs)) }
  feed({ kind: 'attempt.failed', route: 'pay', upstream: 'p' }, 0)
  feed({ kind: 'shift.hold', route: 'pay' }, 10)
  t.equal(tr.list().length, 0, 'failed attempts and holds open nothing')

  feed({ kind: 'breaker.open', route: 'pay', upstream: 'p', before: 'closed', after: 'open' }, 100)
  t.match(tr.list(), [{ route: 'pay', status: 'open', severity: 'upstream', upstreams: ['p'] }])
  tally.record(200, true, null, 5)
  tally.record(503, true, 'GW_ERR_NO_HEALTHY_UPSTREAM', 1)
  feed({ kind: 'shift.step', route: 'pay', before: 0, after: 1, measured: 5000, threshold: 1000 }, 300)
  t.equal(tr.list()[0]?.severity, 'degraded', 'a shift makes it degraded')
  available = false
  feed({ kind: 'outlier.eject', route: 'pay', upstream: 'b' }, 400)
  t.equal(tr.list()[0]?.severity, 'unavailable', 'no upstream available at an event')
  available = true
  feed({ kind: 'policy.reload', route: '*', before: 'v1', after: 'v2' }, 500)
  feed({ kind: 'outlier.return', route: 'pay', upstream: 'b' }, 600)
  feed({ kind: 'breaker.close', route: 'pay', upstream: 'p' }, 700)
  t.equal(tr.list()[0]?.status, 'open', 'still shifted')
  feed({ kind: 'shift.restored', route: 'pay', before: 0.2, after: 0 }, 9000)
  const inc = tr.list()[0]
  t.match(inc, { status: 'resolved', severity: 'unavailable', peakBackupShare: 1, upstreams: ['p', 'b'], resolvedT: 9000 })
  t.same(inc?.impact, { requests: 2, serverErrors: 1, incomplete: 0, p99AtMostSeconds: 0.005 }, 'impact: what the route\'s clients got while it lasted')
  t.same(inc?.events.map(e => e.kind), ['breaker.open', 'shift.step', 'outlier.eject', 'policy.reload', 'outlier.return', 'breaker.close', 'shift.restored'])

  feed({ kind: 'probe.flip', route: 'pay', upstream: 'p', before: 'healthy', after: 'unhealthy' }, 10_000)
  t.equal(tr.list().length, 2, 'a new condition after the restore is a new incident')
  feed({ kind: 'probe.flip', route: 'other', upstream: 'x', before: 'healthy', after: 'unhealthy' }, 10_001)
  t.equal(tr.list().length, 3, 'routes have their own incidents')

  const md = renderReport(inc as NonNullable<typeof inc>)
  t.match(md, /^# Incident \d{8}-1: route pay/)
  t.match(md, /\*\*First shift:\*\* \+0\.20 s \(0 % → 100 %/)
  t.match(md, /\*\*Traffic fully back on the primaries:\*\* \+8\.90 s/)
  t.match(md, /Answered 5xx: 1 \(50\.00 %\)/)
  t.match(md, /\| \+0\.20 s \| shift\.step \|  \| 0 % → 100 % \| 5000 \/ 1000 \| yes \|/)
  t.match(md, /policy\.reload: policy\.reload/, 'the reload is an operator action')
})

t.test('bounded: beyond capacity the oldest resolved incidents go, open ones stay', async t => {
  const tr = new IncidentTracker(() => true, () => null, 3)
  const s = stream()
  tr.onEvent(s.push({ kind: 'breaker.open', route: 'keep', upstream: 'u' }, 0))
  for (let i = 0; i < 10; i++) {
    tr.onEvent(s.push({ kind: 'breaker.open', route: 'r', upstream: 'u' }, 10 * i + 1))
    tr.onEvent(s.push({ kind: 'breaker.close', route: 'r', upstream: 'u' }, 10 * i + 2))
  }
  t.equal(tr.list().length, 3)
  t.equal(tr.list()[0]?.route, 'keep', 'the open one is kept')
})

t.test('a 5 s spike on a real gateway: one incident, its JSON and its report', async t => {
  const { url, adminUrl, p } = await shiftRoute(t)
  const load = steadyLoad(t, `${url}/pay`, 10)
  await new Promise(resolve => setTimeout(resolve, 1500))
  p.set({ latencyMs: 5000 })
  const list = async (): Promise<any[]> => ((await (await request(`${adminUrl}/incidents`)).body.json()) as { incidents: any[] }).incidents
  await until(async () => (await list()).some(i => i.peakBackupShare >= 0.5), 8000, 'an incident with the shift')
  p.set({})
  await until(async () => (await list())[0]?.status === 'resolved', 20_000, 'the incident resolved')
  await load.stop()
  const incidents = await list()
  t.equal(incidents.length, 1, 'one incident')
  const inc = incidents[0]
  t.match(inc, { route: 'pay', severity: 'degraded', status: 'resolved' })
  t.ok(inc.impact.requests > 100, `${inc.impact.requests} requests while it lasted`)
  const full = await (await request(`${adminUrl}/incidents/${inc.id as string}`)).body.json() as any
  t.ok(full.events.some((e: any) => e.kind === 'shift.step') && full.events.at(-1).kind === 'shift.restored', 'from the first step to the restore')
  const res = await request(`${adminUrl}/incidents/${inc.id as string}/report`)
  t.match(res.headers['content-type'], /^text\/markdown/)
  const md = await res.body.text()
  t.match(md, /\*\*Opened:\*\* .* — detected: /)
  t.match(md, /\*\*First shift:\*\* \+0\.00 s/, 'the first event is the first shift')
  t.match(md, /\*\*Traffic fully back on the primaries:\*\* \+\d+\.\d\d s/)
  t.match(md, /Requests to the route while it lasted: \d+/)
  const missing = await request(`${adminUrl}/incidents/nope/report`)
  await missing.body.dump()
  t.equal(missing.statusCode, 404)
  t.equal(missing.headers['x-gateway-error'], 'GW_ERR_ADMIN_NOT_FOUND')
})

t.test('gateway report --policy FILE prints the newest incident\'s report; --list lists them', async t => {
  const p = await upstream(t, { name: 'p' })
  const adminPort = await closedPort()
  const yaml = policyYaml(route('pay', '/', [{ name: 'p', url: p.url }], '    breaker: { consecutiveFailures: 2, openFor: 30s }\n'))
    .replace('admin:\n  host: 127.0.0.1\n  port: 0\n', `admin:\n  host: 127.0.0.1\n  port: ${adminPort}\n`)
  const { url, file } = await startGateway(t, yaml)
  const capture = (): { write: (s: string) => boolean, text: () => string } => {
    let s = ''
    return { write: (x: string) => { s += x; return true }, text: () => s }
  }
  const none = capture()
  t.equal(await runCli(['report', '--policy', file], none, capture()), 0)
  t.equal(none.text(), 'no incidents\n')
  p.set({ errorRate: 1, errorStatus: 500 })
  for (let i = 0; i < 3; i++) await (await request(`${url}/x`)).body.dump()
  const out = capture()
  const err = capture()
  t.equal(await runCli(['report', '--policy', file], out, err), 0, err.text())
  t.match(out.text(), /^# Incident \S+: route pay/)
  t.match(out.text(), /\| breaker\.open \| p \| closed → open \|/)
  const listed = capture()
  t.equal(await runCli(['report', '--list', '--policy', file], listed, capture()), 0)
  t.match(listed.text(), /^\S+ {2}\S+ {2}pay {2}open {2}unavailable\n$/, 'its only upstream is out: unavailable')
  const bad = capture()
  t.equal(await runCli(['report', 'no-such-id', '--policy', file], capture(), bad), 1)
  t.match(bad.text(), /no incident no-such-id/)
})
