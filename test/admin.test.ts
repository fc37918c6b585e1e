/**
 * Admin API: localhost by default, bearer token when configured (healthz
 * stays open for probes), status content, reload over HTTP, problem errors.
 */
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { request } from 'undici'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'

const TOKEN = 'sekret-token-0123'

t.test('admin binds to 127.0.0.1 unless told otherwise', async t => {
  const a = await upstream(t)
  const yaml = policyYaml(route('r', '/', [{ name: 'a', url: a.url }])).replace('admin:\n  host: 127.0.0.1\n', 'admin:\n')
  const { gw } = await startGateway(t, yaml)
  t.equal(gw.addresses().admin?.host, '127.0.0.1')
})

t.test('token required when tokenEnv is set; healthz open', async t => {
  const a = await upstream(t)
  const yaml = policyYaml(route('r', '/', [{ name: 'a', url: a.url }])).replace('  port: 0\n\nroutes', '  port: 0\n  tokenEnv: GW_TEST_TOKEN\n\nroutes')
  const { adminUrl } = await startGateway(t, yaml, { env: { GW_TEST_TOKEN: TOKEN } })

  const anon = await request(`${adminUrl}/status`)
  t.equal(anon.statusCode, 401)
  t.equal(anon.headers['www-authenticate'], 'Bearer realm="gateway-admin"')
  const body = await anon.body.json() as { code: string }
  t.equal(body.code, 'GW_ERR_ADMIN_UNAUTHORIZED')
  t.notMatch(JSON.stringify(body), TOKEN, 'token never echoed')

  const wrong = await request(`${adminUrl}/status`, { headers: { authorization: 'Bearer nope' } })
  t.equal(wrong.statusCode, 401)
  await wrong.body.text()

  const reloadAnon = await request(`${adminUrl}/reload`, { method: 'POST' })
  t.equal(reloadAnon.statusCode, 401, 'reload needs the token too')
  await reloadAnon.body.text()

  const ok = await request(`${adminUrl}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(ok.statusCode, 200)
  await ok.body.json()

  const health = await request(`${adminUrl}/healthz`)
  t.equal(health.statusCode, 200)
  t.match(await health.body.json(), { status: 'ok', version: 'test', generation: 1 })
})

t.test('a missing token variable refuses to start', async t => {
  const a = await upstream(t)
  const yaml = policyYaml(route('r', '/', [{ name: 'a', url: a.url }])).replace('  port: 0\n\nroutes', '  port: 0\n  tokenEnv: GW_TEST_TOKEN\n\nroutes')
  await t.rejects(startGateway(t, yaml, { env: {} }), /GW_TEST_TOKEN must hold the admin token/)
})

t.test('status shows policy, routes, upstreams, counters and latency', async t => {
  const a = await upstream(t, { name: 'a', baseline: { latencyMs: 30 } })
  const { url, adminUrl } = await startGateway(t, policyYaml(route('pay', '/pay', [{ name: 'a', url: a.url }], '    stripPrefix: true\n')))
  for (let i = 0; i < 5; i++) await (await request(`${url}/pay/x`)).body.text()
  await (await request(`${url}/pay/status/500`)).body.text()
  const res = await request(`${adminUrl}/status`)
  const s = await res.body.json() as any
  t.equal(s.policy.version, 'test')
  t.equal(s.policy.generation, 1)
  t.match(s.policy.hash, /^[0-9a-f]{64}$/)
  t.equal(s.routes[0].name, 'pay')
  const u = s.routes[0].upstreams[0]
  t.equal(u.name, 'a')
  t.equal(u.origin, a.url)
  t.equal(u.share, 1)
  t.equal(u.window.outcomes['2xx'], 5)
  t.equal(u.window.outcomes['5xx'], 1)
  t.equal(u.total['2xx'], 5)
  t.ok(u.window.latencyMs.p50 >= 29, `p50 ${u.window.latencyMs.p50} ms reflects the 30 ms upstream`)
  t.ok(u.window.latencyMs.p99 <= u.window.latencyMs.max, 'p99 <= max')
})

t.test('POST /reload (and /admin/reload) reports success or the issues', async t => {
  const a = await upstream(t, { name: 'a' })
  const { adminUrl, file } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: a.url }])))
  await writeFile(file, policyYaml(route('r', '/', [{ name: 'a2', url: a.url }])))
  const ok = await request(`${adminUrl}/admin/reload`, { method: 'POST' })
  t.equal(ok.statusCode, 200)
  t.match(await ok.body.json(), { ok: true, changed: true, trigger: 'admin' })

  await writeFile(file, policyYaml(route('r', '/', [{ name: 'a2', url: a.url }])).replace('routes:', 'rotues: 1\nroutes:'))
  const bad = await request(`${adminUrl}/reload`, { method: 'POST' })
  t.equal(bad.statusCode, 422)
  const body = await bad.body.json() as { code: string, issues: Array<{ path: string, message: string }> }
  t.equal(body.code, 'GW_ERR_POLICY_INVALID')
  t.match(body.issues[0], { path: 'rotues', message: /unknown key "rotues". Did you mean "routes"\?/ })

  const status = await (await request(`${adminUrl}/status`)).body.json() as any
  t.equal(status.policy.lastReload.ok, false, 'status shows the rejected reload')
  t.equal(status.policy.generation, 2, 'and the policy that still serves')
})

t.test('unknown admin path → 404 problem', async t => {
  const a = await upstream(t)
  const { adminUrl } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: a.url }])))
  const res = await request(`${adminUrl}/nope`)
  t.equal(res.statusCode, 404)
  t.match(await res.body.json(), { code: 'GW_ERR_ADMIN_NOT_FOUND' })
})
