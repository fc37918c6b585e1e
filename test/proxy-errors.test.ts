/**
 * Every gateway-made error over real sockets: one problem+json shape, the
 * stable code, the right status, and the upstream named in a header.
 */
import t from 'tap'
import { request } from 'undici'
import { closedPort } from './helpers/net.js'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'

type Problem = { type: string, title: string, status: number, detail: string, code: string, instance: string, route?: string, upstream?: string }

async function problem (url: string, init: Parameters<typeof request>[1] = {}): Promise<{ status: number, headers: Record<string, unknown>, body: Problem }> {
  const res = await request(url, init)
  t.equal(res.headers['content-type'], 'application/problem+json')
  return { status: res.statusCode, headers: res.headers, body: await res.body.json() as Problem }
}


t.test('no route → 404 GW_ERR_ROUTE_NOT_FOUND', async t => {
  const up = await upstream(t)
  const { url } = await startGateway(t, policyYaml(route('r', '/only', [{ name: 'a', url: up.url }])))
  const p = await problem(`${url}/elsewhere`)
  t.equal(p.status, 404)
  t.equal(p.body.code, 'GW_ERR_ROUTE_NOT_FOUND')
  t.equal(p.body.type, 'urn:gateway:error:GW_ERR_ROUTE_NOT_FOUND')
  t.equal(p.headers['x-gateway-error'], 'GW_ERR_ROUTE_NOT_FOUND')
  t.equal(p.body.instance, p.headers['x-request-id'])
  t.equal(up.count, 0)
})

t.test('every upstream drained → 503 GW_ERR_NO_HEALTHY_UPSTREAM with Retry-After', async t => {
  const up = await upstream(t)
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: up.url, weight: 0 }, { name: 'b', url: up.url, weight: 0, role: 'backup' }])))
  const p = await problem(`${url}/x`)
  t.equal(p.status, 503)
  t.equal(p.body.code, 'GW_ERR_NO_HEALTHY_UPSTREAM')
  t.equal(p.body.route, 'r')
  t.equal(p.headers['retry-after'], '1')
  t.equal(up.count, 0)
})

t.test('connection refused → 502 GW_ERR_UPSTREAM_CONNECT naming the upstream, no address leaked', async t => {
  const port = await closedPort()
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'dead', url: `http://127.0.0.1:${port}` }])))
  const p = await problem(`${url}/x`)
  t.equal(p.status, 502)
  t.equal(p.body.code, 'GW_ERR_UPSTREAM_CONNECT')
  t.equal(p.body.upstream, 'dead')
  t.equal(p.headers['x-gateway-upstream'], 'dead')
  t.notMatch(JSON.stringify(p.body), String(port), 'the upstream port is not in the error')
  t.notMatch(JSON.stringify(p.body), '127.0.0.1')
})

t.test('no response headers in time → 504 GW_ERR_UPSTREAM_TIMEOUT', async t => {
  const up = await upstream(t, { name: 'slow', fault: { hangRate: 1 } })
  const { url, gw } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'slow', url: up.url }], '    timeouts: { responseHeaders: 200ms }\n')))
  const started = Date.now()
  const p = await problem(`${url}/x`)
  t.equal(p.status, 504)
  t.equal(p.body.code, 'GW_ERR_UPSTREAM_TIMEOUT')
  t.equal(p.headers['x-gateway-upstream'], 'slow')
  t.ok(Date.now() - started >= 190, 'waited for the timeout')
  const stats = [...gw.stats.all()].find(s => s.upstream === 'slow')?.view()
  t.equal(stats?.total.timeout, 1, 'recorded as a timeout')
})

t.test('total deadline → 504 even while headers timeout is long', async t => {
  const up = await upstream(t, { name: 'slow', fault: { latencyMs: 5000 } })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'slow', url: up.url }], '    timeouts: { responseHeaders: 10s, total: 300ms }\n')))
  const started = Date.now()
  const p = await problem(`${url}/x`)
  t.equal(p.status, 504)
  t.equal(p.body.code, 'GW_ERR_UPSTREAM_TIMEOUT')
  t.match(p.body.detail, /total deadline of 300ms/)
  t.ok(Date.now() - started < 4000, 'did not wait for the slow upstream')
})

t.test('reset before the response → 502 GW_ERR_UPSTREAM_RESET', async t => {
  const up = await upstream(t, { name: 'resetter', fault: { resetRate: 1 } })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'resetter', url: up.url }])))
  const p = await problem(`${url}/x`, { method: 'POST', body: 'pay' })
  t.equal(p.status, 502)
  t.equal(p.body.code, 'GW_ERR_UPSTREAM_RESET')
  t.equal(p.body.upstream, 'resetter')
  t.equal(up.count, 1, 'sent once, not retried')
})

t.test('garbage instead of HTTP → 502 GW_ERR_UPSTREAM_PROTOCOL', async t => {
  const up = await upstream(t, { name: 'liar', fault: { garbageRate: 1 } })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'liar', url: up.url }])))
  const p = await problem(`${url}/x`)
  t.equal(p.status, 502)
  t.equal(p.body.code, 'GW_ERR_UPSTREAM_PROTOCOL')
})

t.test('upstream dies mid-body → client response is cut, gateway keeps serving', async t => {
  const up = await upstream(t, { name: 'cutter' })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'cutter', url: up.url }])))
  const res = await request(`${url}/cut-body`)
  t.equal(res.statusCode, 200, 'headers were already sent')
  await t.rejects(res.body.arrayBuffer(), 'the body ends in an error, not a silent short body')
  const ok = await request(`${url}/x`)
  t.equal(ok.statusCode, 200, 'next request is fine')
  await ok.body.text()
})

t.test('malformed request → 400 problem, gateway keeps serving', async t => {
  const up = await upstream(t)
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: up.url }])))
  const { port } = new URL(url)
  const { connect } = await import('node:net')
  const raw = await new Promise<string>((resolve, reject) => {
    const s = connect(Number(port), '127.0.0.1', () => s.write('GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n'))
    let data = ''
    s.on('data', d => { data += d.toString() })
    s.on('end', () => resolve(data))
    s.on('error', reject)
  })
  t.match(raw, /^HTTP\/1\.1 400 /)
  t.match(raw, /GW_ERR_BAD_REQUEST/)
  const ok = await request(`${url}/x`)
  t.equal(ok.statusCode, 200)
  await ok.body.text()
  t.equal(up.count, 1, 'the malformed request never reached the upstream')
})

t.test('an upstream header with a control character gets a 502 problem, never a hanging client', async t => {
  const { createServer } = await import('node:net')
  // A raw upstream whose header value holds a control character (invalid HTTP)
  const srv = createServer(socket => {
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nx-bad: a\u0001b\r\ncontent-length: 2\r\n\r\nok'))
  })
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { srv.close() })
  const up = `http://127.0.0.1:${(srv.address() as { port: number }).port}`
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'liar', url: up }])))
  const res = await request(`${url}/x`, { headersTimeout: 5000, bodyTimeout: 5000 })
  t.equal(res.statusCode, 502)
  const body = await res.body.json() as Problem
  t.equal(body.code, 'GW_ERR_UPSTREAM_PROTOCOL')
})
