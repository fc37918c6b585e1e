/**
 * Proxying over real sockets: methods, status and header passthrough,
 * hop-by-hop rules, forwarding headers, request ids, path handling.
 */
import t from 'tap'
import { request } from 'undici'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'
import { nodeRequest } from './helpers/client.js'

type Echo = { upstream: string, method: string, url: string, headers: Record<string, string>, bodyBytes: number }

t.test('every method is forwarded with its body and the upstream status comes back unchanged', async t => {
  const up = await upstream(t, { name: 'a' })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: up.url }])))
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const) {
    const body = method === 'GET' || method === 'OPTIONS' ? undefined : `body-of-${method}`
    const res = await request(`${url}/thing?q=1`, { method, body })
    t.equal(res.statusCode, 200, `${method} status`)
    const echo = await res.body.json() as Echo
    t.equal(echo.method, method)
    t.equal(echo.url, '/thing?q=1')
    t.equal(echo.bodyBytes, body === undefined ? 0 : body.length, `${method} body bytes`)
  }
  const head = await request(`${url}/thing`, { method: 'HEAD' })
  t.equal(head.statusCode, 200)
  t.equal(await head.body.text(), '')
  t.equal(up.received.at(-1)?.method, 'HEAD')
  for (const code of [201, 204, 301, 404, 418, 500, 503]) {
    const res = await request(`${url}/status/${code}`)
    t.equal(res.statusCode, code, `status ${code} passes through`)
    t.equal(res.headers['x-gateway-error'], undefined, 'an upstream status is not a gateway error')
    await res.body.text()
  }
})

t.test('hop-by-hop headers are stripped both ways; end-to-end ones pass', async t => {
  const up = await upstream(t, { name: 'a' })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: up.url }])))
  const res = await nodeRequest(`${url}/headers`, {
      connection: 'keep-alive, x-drop-me',
      'x-drop-me': 'secret-hop',
      'keep-alive': 'timeout=9',
      'proxy-authorization': 'Basic abc',
      te: 'trailers',
      'x-keep-me': 'yes'
  })
  t.equal(res.statusCode, 200)
  const echo = JSON.parse(res.body) as Echo
  t.equal(echo.headers['x-keep-me'], 'yes')
  t.equal(echo.headers['x-drop-me'], undefined, 'header named in Connection is not forwarded')
  t.equal(echo.headers['proxy-authorization'], undefined)
  t.equal(echo.headers.te, undefined)
  t.not(echo.headers['keep-alive'], 'timeout=9', 'client keep-alive header is not forwarded')
  // response side: /headers sends hop-by-hop ones that must not reach the client
  t.equal(res.headers['x-custom-hop'], undefined, 'header named in upstream Connection is dropped')
  t.equal(res.headers['proxy-authenticate'], undefined)
  t.equal(res.headers.trailer, undefined)
  t.not(res.headers['keep-alive'], 'timeout=77', 'upstream keep-alive header is not passed on')
  t.equal(res.headers['x-end-to-end'], 'yes')
  t.same(res.headers['set-cookie'], ['a=1', 'b=2'], 'repeated headers keep every value')
  t.equal(res.headers['x-gateway-upstream'], 'a')
})

t.test('X-Forwarded-*, Forwarded and X-Request-Id', async t => {
  const up = await upstream(t, { name: 'a' })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: up.url }])))
  const res = await request(`${url}/x`, { headers: { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6', host: 'shop.example:8080' } })
  const echo = await res.body.json() as Echo
  t.equal(echo.headers['x-forwarded-for'], '127.0.0.1', 'untrusted client XFF is replaced, not appended')
  t.equal(echo.headers.forwarded, 'for=127.0.0.1;host="shop.example:8080";proto=http')
  t.equal(echo.headers['x-forwarded-proto'], 'http')
  t.equal(echo.headers['x-forwarded-host'], 'shop.example:8080')
  t.equal(echo.headers.host, 'shop.example:8080', 'Host preserved by default')
  const generated = echo.headers['x-request-id'] ?? ''
  t.match(generated, /^[0-9a-f-]{36}$/, 'request id generated')
  t.equal(res.headers['x-request-id'], generated, 'and returned to the client')

  const res2 = await request(`${url}/x`, { headers: { 'x-request-id': 'client-id-42' } })
  const echo2 = await res2.body.json() as Echo
  t.equal(echo2.headers['x-request-id'], 'client-id-42', 'client request id propagated')
  t.equal(res2.headers['x-request-id'], 'client-id-42')

  const res3 = await request(`${url}/x`, { headers: { 'x-request-id': 'bad id with spaces' } })
  const echo3 = await res3.body.json() as Echo
  t.match(echo3.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'unsafe request id replaced')
})

t.test('trustForwarded appends to the incoming chains', async t => {
  const up = await upstream(t, { name: 'a' })
  const yaml = policyYaml(route('r', '/', [{ name: 'a', url: up.url }])).replace('    port: 0\nadmin', '    port: 0\n    trustForwarded: true\nadmin')
  const { url } = await startGateway(t, yaml)
  const res = await request(`${url}/x`, { headers: { 'x-forwarded-for': '10.1.2.3', forwarded: 'for=10.1.2.3', host: 'h' } })
  const echo = await res.body.json() as Echo
  t.equal(echo.headers['x-forwarded-for'], '10.1.2.3, 127.0.0.1')
  t.equal(echo.headers.forwarded, 'for=10.1.2.3, for=127.0.0.1;host="h";proto=http')
})

t.test('stripPrefix, upstream base path and preserveHost: false', async t => {
  const up = await upstream(t, { name: 'a' })
  const routes = route('api', '/api', [{ name: 'a', url: `${up.url}/v2/` }], '    stripPrefix: true\n    preserveHost: false\n')
  const { url } = await startGateway(t, policyYaml(routes))
  const res = await request(`${url}/api/orders/7?x=1`)
  const echo = await res.body.json() as Echo
  t.equal(echo.url, '/v2/orders/7?x=1')
  t.equal(echo.headers.host, new URL(up.url).host, 'Host is the upstream host')
  const root = await request(`${url}/api?y=2`)
  t.equal((await root.body.json() as Echo).url, '/v2/?y=2', 'prefix equal to the whole path becomes /')
})

t.test('routes match by host, wildcard host, method and header, first match wins', async t => {
  const a = await upstream(t, { name: 'a' })
  const b = await upstream(t, { name: 'b' })
  const c = await upstream(t, { name: 'c' })
  const d = await upstream(t, { name: 'd' })
  const e = await upstream(t, { name: 'e' })
  const yaml = policyYaml(`  - name: tenant
    match: { pathPrefix: /shop, headers: { X-Tenant: live } }
    upstreams: [{ name: d, url: ${d.url} }]
  - name: exact-host
    match: { pathPrefix: /shop, host: pay.example.com }
    upstreams: [{ name: a, url: ${a.url} }]
  - name: wildcard
    match: { pathPrefix: /shop, host: "*.example.com" }
    upstreams: [{ name: b, url: ${b.url} }]
  - name: writes
    match: { pathPrefix: /shop, methods: [post, put] }
    upstreams: [{ name: e, url: ${e.url} }]
  - name: rest
    match: { pathPrefix: /shop }
    upstreams: [{ name: c, url: ${c.url} }]
`)
  const { url } = await startGateway(t, yaml)
  const who = async (opts: { host?: string, method?: 'GET' | 'POST', tenant?: string }): Promise<string> => {
    const headers: Record<string, string> = {}
    if (opts.host !== undefined) headers.host = opts.host
    if (opts.tenant !== undefined) headers['x-tenant'] = opts.tenant
    const res = await request(`${url}/shop/1`, { method: opts.method ?? 'GET', headers })
    return (await res.body.json() as Echo).upstream
  }
  t.equal(await who({ host: 'PAY.example.com:443' }), 'a', 'exact host, case and port ignored')
  t.equal(await who({ host: 'img.example.com' }), 'b', 'wildcard host')
  t.equal(await who({ host: 'example.com' }), 'c', 'wildcard does not match the bare domain')
  t.equal(await who({ method: 'POST' }), 'e', 'method match')
  t.equal(await who({ tenant: 'live', host: 'pay.example.com' }), 'd', 'header match, first route wins')
  t.equal(await who({ tenant: 'other' }), 'c', 'header value must be equal')
})
