/**
 * GET /metrics on the admin listener, against real upstreams over real
 * sockets: every scrape passes Prometheus's own checker (`promtool check
 * metrics`: the text-format parser and the naming linter), the counts match
 * what was sent and what the upstreams received, label sets stay bounded
 * whatever the request paths, a latency spike shows as the shift in the
 * share series, and the token guards the endpoint like the rest of the API.
 */
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { request } from 'undici'
import { upstream, startGateway, policyYaml, route, shiftRoute } from './helpers/harness.js'
import { hits, steadyLoad, until } from './helpers/load.js'

const PROMTOOL = process.env.PROMTOOL ?? 'promtool'

interface Sample { readonly name: string, readonly labels: Record<string, string>, readonly value: number }

/** Runs promtool on the text; returns its complaints ('' when clean). */
function promtoolProblems (text: string): string {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' })
  if (r.error !== undefined) throw new Error(`promtool could not run (${r.error.message}): npm test installs it (scripts/ensure-test-tools.sh)`)
  return r.status === 0 ? '' : `${r.stdout}${r.stderr}`.trim() || `exit ${String(r.status)}`
}

/** The sample lines of a scrape (the format promtool just accepted). */
function samples (text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`unexpected line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = l[2] as string
    out.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  return out
}

const value = (all: readonly Sample[], name: string, labels: Record<string, string>): number | undefined =>
  all.find(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value

async function scrape (t: Test, adminUrl: string, headers: Record<string, string> = {}): Promise<Sample[]> {
  const res = await request(`${adminUrl}/metrics`, { headers })
  const text = await res.body.text()
  t.equal(res.statusCode, 200, 'GET /metrics answers 200')
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(promtoolProblems(text), '', 'promtool check metrics: no problems')
  return samples(text)
}

t.test('counts match what was sent and received; promtool accepts every scrape', async t => {
  const p = await upstream(t, { name: 'p' })
  const b = await upstream(t, { name: 'b' })
  const yaml = policyYaml(route('pay', '/pay', [{ name: 'p', url: p.url }, { name: 'b', url: b.url, role: 'backup' }],
    '    breaker: { consecutiveFailures: 50 }\n    retry: { attempts: 2, on: [503] }\n    healthCheck: { path: /healthz, interval: 5s }\n    shift: { threshold: 1s }\n'))
  const { url, adminUrl } = await startGateway(t, yaml)
  const before = await scrape(t, adminUrl)
  t.equal(value(before, 'gateway_requests_total', { route: 'pay', class: '2xx' }), 0, 'series exist at 0 before any request')

  await hits(`${url}/pay/ok`, 20)
  await hits(`${url}/nowhere`, 3)
  p.set({ errorRate: 1, errorStatus: 503 })
  await hits(`${url}/pay/retried`, 4)
  p.set({})

  const m = await scrape(t, adminUrl)
  t.equal(value(m, 'gateway_requests_total', { route: 'pay', class: '2xx' }), 24, '24 answered 2xx (4 of them after a retry)')
  t.equal(value(m, 'gateway_requests_total', { route: '', listener: 'public', class: '4xx' }), 3, 'requests no route took: counted on the listener')
  t.equal(value(m, 'gateway_errors_total', { route: '', listener: 'public', code: 'GW_ERR_ROUTE_NOT_FOUND' }), 3)
  t.equal(value(m, 'gateway_retries_total', { route: 'pay' }), 4)
  const pay = p.received.filter(r => r.url.startsWith('/pay')).length
  const payB = b.received.filter(r => r.url.startsWith('/pay')).length
  t.equal(value(m, 'gateway_upstream_attempts_total', { route: 'pay', upstream: 'p', outcome: '2xx' }), 20)
  t.equal(value(m, 'gateway_upstream_attempts_total', { route: 'pay', upstream: 'p', outcome: '5xx' }), 4)
  t.equal((value(m, 'gateway_upstream_attempts_total', { route: 'pay', upstream: 'p', outcome: '2xx' }) ?? 0) +
    (value(m, 'gateway_upstream_attempts_total', { route: 'pay', upstream: 'p', outcome: '5xx' }) ?? 0), pay, 'attempts = what the primary received')
  t.equal(value(m, 'gateway_upstream_attempts_total', { route: 'pay', upstream: 'b', outcome: '2xx' }), payB, 'retries went to the backup, as it counted')
  t.equal(value(m, 'gateway_request_duration_seconds_count', { route: 'pay' }), 24)
  t.equal(value(m, 'gateway_request_duration_seconds_bucket', { route: 'pay', le: '+Inf' }), 24)
  t.equal(value(m, 'gateway_upstream_attempt_duration_seconds_count', { route: 'pay', upstream: 'p' }), 24)
  t.equal(value(m, 'gateway_upstream_breaker_state', { route: 'pay', upstream: 'p', state: 'closed' }), 1)
  t.equal(value(m, 'gateway_upstream_health_check_up', { route: 'pay', upstream: 'p' }), 1)
  t.equal(value(m, 'gateway_upstream_share', { route: 'pay', upstream: 'p' }), 1)
  t.equal(value(m, 'gateway_shift_phase', { route: 'pay', phase: 'idle' }), 1)
  t.equal(value(m, 'gateway_policy_info', { version: 'test' }), 1)
  t.ok((value(m, 'process_cpu_user_seconds_total', {}) ?? 0) > 0, 'process metrics are there')
  const doc = readFileSync(new URL('../docs/metrics.md', import.meta.url), 'utf8')
  const names = [...new Set(m.filter(s => s.name.startsWith('gateway_')).map(s => s.name.replace(/_(bucket|sum|count)$/, '')))]
  t.same(names.filter(n => !doc.includes(`| \`${n}\` |`)), [], 'docs/metrics.md lists every gateway_ series')
  const buckets = m.filter(s => s.name === 'gateway_request_duration_seconds_bucket' && s.labels.route === 'pay').map(s => s.value)
  t.same(buckets, [...buckets].sort((x, y) => x - y), 'buckets are cumulative')
})

t.test('10,000 distinct request paths add no series; a hostile x-gateway-error from an upstream is not counted', async t => {
  const p = await upstream(t, { name: 'p' })
  const { url, adminUrl } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'p', url: p.url }])))
  await hits(`${url}/warm`, 2)
  const before = await scrape(t, adminUrl)
  const keys = (all: readonly Sample[]): string[] => all.filter(s => s.name.startsWith('gateway_')).map(s => `${s.name}${JSON.stringify(s.labels)}`).sort()
  const N = 10_000
  for (let i = 0; i < N; i += 200) {
    await Promise.all(Array.from({ length: 200 }, async (_, j) => {
      const res = await request(`${url}/item/${i + j}?q=${i + j}`, { headers: { 'x-gateway-error': `GW_ERR_FAKE_${i + j}` } })
      await res.body.dump()
    }))
  }
  const after = await scrape(t, adminUrl)
  t.same(keys(after), keys(before), 'the same series before and after')
  t.equal(value(after, 'gateway_requests_total', { route: 'r', class: '2xx' }), N + 2)
})

t.test('a 5 s latency spike on the primary shows as the shift in the share series', async t => {
  const { url, adminUrl, p } = await shiftRoute(t)
  const load = steadyLoad(t, `${url}/pay`, 10)
  await new Promise(resolve => setTimeout(resolve, 1500))
  const calm = await scrape(t, adminUrl)
  t.equal(value(calm, 'gateway_shift_backup_share', { route: 'pay' }), 0, 'before the spike: nothing on the backup')
  p.set({ latencyMs: 5000 })
  let shifted: Sample[] = []
  await until(async () => {
    shifted = samples(await (await request(`${adminUrl}/metrics`)).body.text())
    return (value(shifted, 'gateway_shift_backup_share', { route: 'pay' }) ?? 0) >= 0.5
  }, 8000, 'backup share ≥ 50 % in /metrics')
  t.ok((value(shifted, 'gateway_upstream_share', { route: 'pay', upstream: 'b' }) ?? 0) >= 0.5, 'the backup\'s expected share rose')
  t.equal(value(shifted, 'gateway_shift_phase', { route: 'pay', phase: 'idle' }), 0, 'the controller is no longer idle')
  t.ok((value(shifted, 'gateway_events_total', { route: 'pay', kind: 'shift.step' }) ?? 0) >= 1, 'the step is counted')
  t.ok((value(shifted, 'gateway_upstream_oldest_inflight_seconds', { route: 'pay', upstream: 'p' }) ?? 0) > 0.3, 'the primary\'s stuck attempts show their age')
  p.set({})
  await load.stop()
})

t.test('with an admin token, /metrics needs it (Prometheus sends it as a bearer token)', async t => {
  const p = await upstream(t, { name: 'p' })
  const { adminUrl } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'p', url: p.url }])).replace('admin:\n  host: 127.0.0.1\n  port: 0\n', 'admin:\n  host: 127.0.0.1\n  port: 0\n  tokenEnv: METRICS_TEST_TOKEN\n'),
    { env: { METRICS_TEST_TOKEN: 's3cret-token-value' } })
  const res = await request(`${adminUrl}/metrics`)
  const body = await res.body.text()
  t.equal(res.statusCode, 401)
  t.notMatch(body, /gateway_requests_total/, 'no series without the token')
  const ok = await scrape(t, adminUrl, { authorization: 'Bearer s3cret-token-value' })
  t.ok(ok.length > 0)
})
