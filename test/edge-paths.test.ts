/**
 * Edge hardening over raw sockets: path normalization before routing,
 * request-line and Host rules, spoofable client-IP headers. A raw upstream
 * records the exact request heads that reach it.
 */
import t from 'tap'
import { startGateway, policyYaml, route, type Teardown } from './helpers/harness.js'
import { rawExchange, rawUpstream, statusOf, problemOf } from './helpers/raw.js'

const port = (url: string): number => Number(new URL(url).port)
const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: shop.example\r\n${extra}Connection: close\r\n\r\n`

async function setup (t: Teardown, listenerExtra = '') {
  const up = await rawUpstream(t)
  const routes = route('pay', '/pay/', [{ name: 'a', url: up.url }]) +
    route('api', '/api/', [{ name: 'b', url: `${up.url}/v2` }], '    stripPrefix: true\n')
  const yaml = policyYaml(routes).replace('    port: 0\nadmin', `    port: 0\n${listenerExtra}admin`)
  const { url } = await startGateway(t, yaml)
  return { up, gw: port(url) }
}

t.test('dot-segments are removed before routing: /pay/../admin cannot reach another path', async t => {
  const { up, gw } = await setup(t)
  for (const p of ['/pay/../admin', '/pay/%2e%2e/admin', '/pay/%2E%2e/admin', '/pay/./../admin', '/api/../internal/secret', '/api/%2e%2e/internal/secret']) {
    const r = await rawExchange(gw, get(p))
    t.equal(statusOf(r), 404, `${p} → 404, routed as its normalized path`)
    t.equal(problemOf(r).code, 'GW_ERR_ROUTE_NOT_FOUND')
  }
  t.same(up.lines(), [], 'nothing reached the upstream')
  for (const p of ['/../admin', '/pay/../../admin', '/%2e%2e/admin']) {
    const r = await rawExchange(gw, get(p))
    t.equal(statusOf(r), 400, `${p} climbs above the root → 400`)
    t.equal(problemOf(r).code, 'GW_ERR_PATH_INVALID')
  }
  t.same(up.lines(), [])
})

t.test('the normalized path is what is forwarded; the query is untouched', async t => {
  const { up, gw } = await setup(t)
  const cases: Array<[string, string]> = [
    ['/pay/a/../b', 'GET /pay/b HTTP/1.1'],
    ['/pay/a/./b/.', 'GET /pay/a/b/ HTTP/1.1'],
    ['/pay/x?next=/../y&a=%2e%2e', 'GET /pay/x?next=/../y&a=%2e%2e HTTP/1.1'],
    ['/api/x/../secret', 'GET /v2/secret HTTP/1.1'],
    ['/pay//double///slash', 'GET /pay/double/slash HTTP/1.1'],
    ['/pay/caf%C3%A9', 'GET /pay/caf%C3%A9 HTTP/1.1']
  ]
  for (const [sent] of cases) t.equal(statusOf(await rawExchange(gw, get(sent))), 200, sent)
  t.same(up.lines(), cases.map(c => c[1]))
})

t.test('encoded slashes, backslashes, ..; and bad escapes are refused by default', async t => {
  const { up, gw } = await setup(t)
  for (const p of ['/pay/a%2Fb', '/pay/a%2fb', '/pay/a%5Cb', '/pay/a\\b', '/pay/..;/admin', '/pay/%2e%2e;x/admin', '/pay/a%zz', '/pay/a%4']) {
    const r = await rawExchange(gw, get(p))
    t.equal(statusOf(r), 400, `${p} → 400`)
    t.equal(problemOf(r).code, 'GW_ERR_PATH_INVALID', p)
  }
  t.same(up.lines(), [])
})

t.test('paths: escapedSlashes keep/decode and slashes keep/reject are listener choices', async t => {
  const keep = await setup(t, '    paths: { escapedSlashes: keep, slashes: keep }\n')
  t.equal(statusOf(await rawExchange(keep.gw, get('/pay/a%2Fb'))), 200)
  t.equal(statusOf(await rawExchange(keep.gw, get('/pay/a//b'))), 200)
  t.same(keep.up.lines(), ['GET /pay/a%2Fb HTTP/1.1', 'GET /pay/a//b HTTP/1.1'], 'kept exactly as sent')

  const decode = await setup(t, '    paths: { escapedSlashes: decode }\n')
  t.equal(statusOf(await rawExchange(decode.gw, get('/pay/a%2Fb'))), 200)
  t.equal(statusOf(await rawExchange(decode.gw, get('/pay/x%2F..%2F..%2Fadmin'))), 404, 'decoded slashes take part in dot-segment removal')
  t.same(decode.up.lines(), ['GET /pay/a/b HTTP/1.1'])

  const reject = await setup(t, '    paths: { slashes: reject }\n')
  const r = await rawExchange(reject.gw, get('/pay/a//b'))
  t.equal(statusOf(r), 400)
  t.equal(problemOf(r).code, 'GW_ERR_PATH_INVALID')
  t.same(reject.up.lines(), [])
})

t.test('Host rules (RFC 9112 §3.2): exactly one valid Host; absolute-form authority replaces it', async t => {
  const { up, gw } = await setup(t)
  const bad = [
    'GET /pay/x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n',
    'GET /pay/x HTTP/1.1\r\nConnection: close\r\n\r\n',
    'GET /pay/x HTTP/1.1\r\nHost: a"b.example\r\nConnection: close\r\n\r\n',
    'GET /pay/x HTTP/1.1\r\nHost: a b.example\r\nConnection: close\r\n\r\n',
    'GET /pay/x HTTP/1.1\r\nHost: a.example/evil\r\nConnection: close\r\n\r\n',
    'GET /pay/x HTTP/1.1\r\nHost: user@a.example\r\nConnection: close\r\n\r\n',
    'GET http://user@evil.example/pay/x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n'
  ]
  for (const req of bad) {
    const r = await rawExchange(gw, req)
    t.equal(statusOf(r), 400, JSON.stringify(req.slice(0, 60)))
    t.equal(problemOf(r).code, 'GW_ERR_HOST_INVALID')
  }
  t.same(up.heads, [], 'none was forwarded')

  t.equal(statusOf(await rawExchange(gw, 'GET http://Other.Example:8080/pay/abs?q=1 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n')), 200)
  const head = up.heads[0] ?? ''
  t.match(head, /^GET \/pay\/abs\?q=1 HTTP\/1\.1\r\n/, 'forwarded in origin-form')
  t.match(head, /\r\nhost: Other\.Example:8080\r\n/i, 'the target authority replaced Host')
  t.match(head, /\r\nx-forwarded-host: Other\.Example:8080\r\n/i)
  t.notMatch(head, /a\.example/, 'the ignored Host header is not forwarded anywhere')

  t.equal(statusOf(await rawExchange(gw, 'GET /pay/old HTTP/1.0\r\n\r\n')), 200, 'HTTP/1.0 without Host is fine')
})

t.test('HTTP/2.0 and HTTP/0.9 request lines are not forwarded as HTTP/1.1', async t => {
  const { up, gw } = await setup(t)
  const h2 = await rawExchange(gw, 'GET /pay/x HTTP/2.0\r\nHost: a.example\r\nConnection: close\r\n\r\n')
  t.equal(statusOf(h2), 505)
  t.equal(problemOf(h2).code, 'GW_ERR_HTTP_VERSION_NOT_SUPPORTED')
  const h09 = await rawExchange(gw, 'GET /pay/x\r\n\r\n')
  t.ok(statusOf(h09) === 400 || statusOf(h09) === 505 || h09 === '', `HTTP/0.9 refused (got ${JSON.stringify(h09.slice(0, 20))})`)
  t.notMatch(h09, /^HTTP\/1\.1 200/)
  const preface = await rawExchange(gw, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
  t.ok(statusOf(preface) >= 400, 'an HTTP/2 preface is refused')
  t.same(up.heads, [])
})

t.test('spoofable client-IP headers are dropped and X-Real-IP is set, unless trustForwarded', async t => {
  const spoof = 'X-Real-IP: 6.6.6.6\r\nTrue-Client-IP: 6.6.6.6\r\nX-Client-IP: 6.6.6.6\r\nCF-Connecting-IP: 6.6.6.6\r\nX-Cluster-Client-IP: 6.6.6.6\r\nFastly-Client-IP: 6.6.6.6\r\n'
  const plain = await setup(t)
  t.equal(statusOf(await rawExchange(plain.gw, get('/pay/ip', spoof))), 200)
  const head = plain.up.heads[0] ?? ''
  t.notMatch(head, /6\.6\.6\.6/, 'no spoofed address reaches the upstream')
  t.match(head, /\r\nx-real-ip: 127\.0\.0\.1(\r\n|$)/i, 'X-Real-IP is the address the gateway saw')
  t.notMatch(head, /true-client-ip|x-client-ip|cf-connecting-ip|fastly-client-ip|x-cluster-client-ip/i)

  const trusted = await setup(t, '    trustForwarded: true\n')
  t.equal(statusOf(await rawExchange(trusted.gw, get('/pay/ip', spoof))), 200)
  const th = trusted.up.heads[0] ?? ''
  t.match(th, /\r\nX-Real-IP: 6\.6\.6\.6/, 'behind a trusted balancer they pass')
  t.match(th, /\r\nCF-Connecting-IP: 6\.6\.6\.6/)
  t.equal((th.match(/x-real-ip/gi) ?? []).length, 1, 'one X-Real-IP')
})
