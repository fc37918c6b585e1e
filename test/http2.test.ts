/**
 * HTTP/2 to clients (docs/listener-tls.md): curl --http2 and an HTTP/1.1
 * client on one TLS listener (ALPN), curl --http2-prior-knowledge (h2c)
 * and HTTP/1.1 on one plain listener; what the upstream receives (no
 * pseudo-headers, :authority as Host, the body byte for byte); the same
 * idempotency, retries and gateway errors as HTTP/1.1; header limits;
 * graceful drain with GOAWAY.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { connect, type ClientHttp2Session } from 'node:http2'
import { request as httpsRequest } from 'node:https'
import { randomBytes, createHash } from 'node:crypto'
import { request } from 'undici'
import { upstream, startGateway, policyYaml, route, type Teardown } from './helpers/harness.js'
import { makeCerts } from './helpers/certs.js'

interface Curl { status: number, version: string, body: string, headers: string }

/** curl with the given flags; `-w` prints the HTTP version and status after the body. */
async function curl (args: string[]): Promise<Curl> {
  const out = await new Promise<string>((resolve, reject) => {
    execFile('curl', ['-sS', '-D', '-', '-w', '\n%{http_version} %{http_code}', ...args], { maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`curl failed: ${err.message} ${stderr}`))
      else resolve(stdout)
    })
  })
  const end = out.indexOf('\r\n\r\n')
  const headers = out.slice(0, end)
  const rest = out.slice(end + 4)
  const nl = rest.lastIndexOf('\n')
  const [version = '', code = '0'] = rest.slice(nl + 1).split(' ')
  return { status: Number(code), version, body: rest.slice(0, nl), headers: headers.toLowerCase() }
}

const listenerBlock = (extra: string): string => `    port: 0\n${extra}admin:`

async function gatewayWith (t: Teardown, listener: string, routes: string): Promise<{ port: number, adminUrl: string, gw: Awaited<ReturnType<typeof startGateway>>['gw'] }> {
  const s = await startGateway(t, policyYaml(routes).replace('    port: 0\nadmin:', listenerBlock(listener)))
  return { port: Number(new URL(s.url).port), adminUrl: s.adminUrl, gw: s.gw }
}

async function h2get (session: ClientHttp2Session, headers: Record<string, string | string[]>, body?: Buffer): Promise<{ status: number, headers: Record<string, unknown>, body: string }> {
  return await new Promise((resolve, reject) => {
    const stream = session.request(headers)
    let status = 0
    let hs: Record<string, unknown> = {}
    let text = ''
    stream.on('response', h => { status = Number(h[':status']); hs = h })
    stream.setEncoding('utf8')
    stream.on('data', (c: string) => { text += c })
    stream.on('end', () => { resolve({ status, headers: hs, body: text }) })
    stream.on('error', reject)
    stream.end(body)
  })
}

t.test('TLS listener: curl --http2 gets HTTP/2, curl --http1.1 and a node client HTTP/1.1, on one port', async t => {
  const certs = makeCerts(t)
  const server = certs.issue('gw', ['DNS:pay.example.test', 'IP:127.0.0.1'])
  const app = await upstream(t, { name: 'app' })
  const { port } = await gatewayWith(t, `    tls:\n      certificates:\n        - { cert: ${JSON.stringify(server.certFile)}, key: ${JSON.stringify(server.keyFile)} }\n`,
    route('api', '/', [{ name: 'app', url: app.url }]))
  const base = ['--cacert', certs.ca.certFile, '--resolve', `pay.example.test:${port}:127.0.0.1`]
  const url = `https://pay.example.test:${port}/orders/7?x=1`

  const h2 = await curl([...base, '--http2', '-H', 'x-merchant: m1', url])
  t.equal(h2.version, '2', 'ALPN h2')
  t.equal(h2.status, 200)
  const seen = app.received.at(-1)
  t.equal(seen?.url, '/orders/7?x=1')
  t.equal(seen?.headers.host, `pay.example.test:${port}`, ':authority becomes the Host')
  t.equal(seen?.headers['x-merchant'], 'm1')
  t.equal(seen?.headers['x-forwarded-proto'], 'https')
  t.notOk(seen?.rawHeaders.some(h => h.startsWith(':')), 'no pseudo-header goes upstream')

  const h1 = await curl([...base, '--http1.1', url])
  t.equal(h1.version, '1.1', 'ALPN http/1.1')
  t.equal(h1.status, 200)

  const node = await new Promise<number>((resolve, reject) => {
    httpsRequest({ host: '127.0.0.1', port, path: '/n', ca: certs.ca.cert, agent: false }, res => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject).end()
  })
  t.equal(node, 200, 'a client without ALPN gets HTTP/1.1')

  const missing = await curl([...base, '--http2', `https://pay.example.test:${port}`.replace(/\/$/, '') + '/..%2f'])
  t.equal(missing.version, '2')
  t.equal(missing.status, 400, 'edge checks apply over HTTP/2 (an encoded slash is refused)')
  t.match(missing.headers, /x-gateway-error: gw_err_path_invalid/)
})

t.test('h2c: curl --http2-prior-knowledge and HTTP/1.1 on one plain listener', async t => {
  const app = await upstream(t, { name: 'app' })
  const { port } = await gatewayWith(t, '    http2: true\n', route('api', '/', [{ name: 'app', url: app.url }]))
  const h2c = await curl(['--http2-prior-knowledge', `http://127.0.0.1:${port}/h2c`])
  t.equal(h2c.version, '2')
  t.equal(h2c.status, 200)
  t.equal(app.received.at(-1)?.headers['x-forwarded-proto'], 'http')
  const h1 = await request(`http://127.0.0.1:${port}/h1`)
  await h1.body.text()
  t.equal(h1.statusCode, 200, 'HTTP/1.1 on the same port')
  const none = await curl([`http://127.0.0.1:${port}/nothing-here`.replace('/nothing-here', '/h1b')])
  t.equal(none.version, '1.1')

  // A plain listener without http2: prior knowledge gets no HTTP/2.
  const plain = await gatewayWith(t, '', route('api', '/', [{ name: 'app', url: app.url }]))
  await t.rejects(curl(['--http2-prior-knowledge', `http://127.0.0.1:${plain.port}/x`]), 'h2c is off by default on plain listeners')
})

t.test('over HTTP/2: bodies byte for byte, idempotency keys, retries to the backup, coded errors, header limits', async t => {
  const a = await upstream(t, { name: 'a', fault: { errorRate: 1, errorStatus: 503 } })
  const b = await upstream(t, { name: 'b' })
  const pay = await upstream(t, { name: 'pay' })
  const { port } = await gatewayWith(t, '    http2: true\n',
    route('pay', '/pay/', [{ name: 'pay', url: pay.url }], '    idempotency: {}\n') +
    route('orders', '/orders/', [{ name: 'a', url: a.url }, { name: 'b', url: b.url, role: 'backup' }], '    retry: { attempts: 2, on: [503], backoff: { base: 5ms, max: 10ms } }\n'))
  const session = connect(`http://127.0.0.1:${port}`)
  t.teardown(() => session.close())
  const warnings: string[] = []
  const onWarning = (w: Error): void => { warnings.push(w.message) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })

  const body = randomBytes(1 << 20)
  const up = await h2get(session, { ':method': 'POST', ':path': '/pay/upload', 'content-type': 'application/octet-stream' }, body)
  t.equal(up.status, 200)
  t.equal(pay.received.at(-1)?.bodyBytes, body.length)
  t.equal(pay.received.at(-1)?.bodySha256, createHash('sha256').update(body).digest('hex'), 'the body arrives byte for byte')

  const charge = { ':method': 'POST', ':path': '/pay/charge', 'idempotency-key': 'h2-key-1', 'content-type': 'application/json' }
  const first = await h2get(session, charge, Buffer.from('{"amount":100}'))
  const again = await h2get(session, charge, Buffer.from('{"amount":100}'))
  t.equal(first.status, 200)
  t.equal(again.status, 200)
  t.equal(pay.received.filter(r => r.url === '/pay/charge').length, 1, 'a repeated key is answered from the record: charged once')
  t.equal(again.headers['idempotency-replayed'], 'true', 'the repeat says it is a replay')

  const retried = await h2get(session, { ':method': 'GET', ':path': '/orders/1' })
  t.equal(retried.status, 200)
  t.equal(retried.headers['x-gateway-upstream'], 'b', 'the 503 was retried to the backup')

  const none = await h2get(session, { ':method': 'GET', ':path': '/nowhere' })
  t.equal(none.status, 404)
  t.equal(none.headers['x-gateway-error'], 'GW_ERR_ROUTE_NOT_FOUND')
  t.equal(JSON.parse(none.body).code, 'GW_ERR_ROUTE_NOT_FOUND')

  const many: Record<string, string> = { ':method': 'GET', ':path': '/orders/2' }
  for (let i = 0; i < 101; i++) many[`x-h-${i}`] = 'v'
  const tooMany = await h2get(session, many)
  t.equal(tooMany.status, 431, '101 header fields: refused, as over HTTP/1.1')
  t.same(warnings.filter(w => /HTTP\/2|connection header|Status message/i.test(w)), [], 'no HTTP/2 warnings from node')
})

t.test('drain: an HTTP/2 request under way finishes, the session gets GOAWAY', async t => {
  const slow = await upstream(t, { name: 'slow', fault: { latencyMs: 300 } })
  const { port, gw } = await gatewayWith(t, '    http2: true\n', route('api', '/', [{ name: 'slow', url: slow.url }]))
  const session = connect(`http://127.0.0.1:${port}`)
  let goaway = false
  session.on('goaway', () => { goaway = true })
  session.on('error', () => {})
  const pending = h2get(session, { ':method': 'GET', ':path': '/slow' })
  await new Promise(resolve => setTimeout(resolve, 100))
  const closing = gw.close()
  const r = await pending
  await closing
  t.equal(r.status, 200, 'the request in flight was served')
  t.ok(goaway, 'the client was told to go')
})

t.test('HTTP/2 upstreams (http2: true): h2 by ALPN when the upstream speaks it, HTTP/1.1 when it does not', async t => {
  const { createSecureServer } = await import('node:http2')
  const { createServer: createHttpsServer } = await import('node:https')
  const certs = makeCerts(t)
  const pem = certs.issue('up', ['DNS:localhost', 'IP:127.0.0.1'])
  const versions: string[] = []
  const h2up = createSecureServer({ key: pem.key, cert: pem.cert }, (req, res) => {
    versions.push(`${req.httpVersion} ${String(req.headers.host ?? req.headers[':authority'])}`)
    req.resume()
    req.on('end', () => {
      res.setHeader('set-cookie', ['a=1', 'b=2'])
      res.setHeader('x-upstream-proto', req.httpVersion)
      res.end('from h2')
    })
  })
  const h1up = createHttpsServer({ key: pem.key, cert: pem.cert }, (req, res) => { req.resume(); res.end(`from ${req.httpVersion}`) })
  for (const s of [h2up, h1up]) {
    await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
    t.teardown(async () => { await new Promise(resolve => s.close(resolve)) })
  }
  const portOf = (s: { address: () => unknown }): number => (s.address() as { port: number }).port
  h2up.on('session', s => t.teardown(() => s.destroy()))
  const tls = `{ ca: ${JSON.stringify(certs.ca.certFile)} }`
  const { port } = await gatewayWith(t, '',
    `  - name: h2
    match: { pathPrefix: /h2/ }
    upstreams:
      - { name: h2up, url: "https://127.0.0.1:${portOf(h2up)}", http2: true, tls: ${tls} }
  - name: h1
    match: { pathPrefix: /h1/ }
    upstreams:
      - { name: h1up, url: "https://127.0.0.1:${portOf(h1up)}", http2: true, tls: ${tls} }
`)
  const results = await Promise.all([1, 2, 3, 4, 5].map(async i => {
    const r = await request(`http://127.0.0.1:${port}/h2/${i}`, { method: 'POST', body: `body ${i}` })
    return { status: r.statusCode, body: await r.body.text(), cookies: r.headers['set-cookie'], proto: r.headers['x-upstream-proto'] }
  }))
  t.same(results.map(r => r.status), [200, 200, 200, 200, 200])
  t.equal(results[0]?.body, 'from h2')
  t.equal(results[0]?.proto, '2.0', 'the upstream was spoken to in HTTP/2')
  t.same(results[0]?.cookies, ['a=1', 'b=2'], 'repeated headers pass')
  t.ok(versions.every(v => v.startsWith('2.0 127.0.0.1:')), 'h2 with the upstream\'s own authority')
  const h1 = await request(`http://127.0.0.1:${port}/h1/x`)
  t.equal(await h1.body.text(), 'from 1.1', 'an https upstream without h2 is spoken to in HTTP/1.1')

  const bad = await import('../gateway/policy/load.js').then(async m => await m.loadPolicyFile(await (await import('./helpers/harness.js')).policyFile(policyYaml(route('x', '/', [{ name: 'plain', url: 'http://127.0.0.1:9' }]).replace('url: http://127.0.0.1:9', 'url: http://127.0.0.1:9\n        http2: true'))), {}))
  t.equal(bad.ok, false)
  t.match(bad.ok ? '' : bad.issues.map(i => i.message).join(), /https:\/\/ upstreams only/, 'http2 on an http:// upstream is a policy error')
})

t.test('HTTP/2 meanings: a cut response is a reset, odd upstream headers pass, a refused body keeps the session, a client reset is never forwarded', async t => {
  const { createServer: createNetServer } = await import('node:net')
  // A raw HTTP/1.1 upstream: /dup repeats single-value headers and sends connection-specific ones; /cut dies mid-body.
  const raw = createNetServer(socket => {
    socket.once('data', (c: Buffer) => {
      const line = c.toString('latin1').split('\r\n')[0] ?? ''
      if (line.includes('/dup')) {
        socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-type: text/html\r\nkeep-alive: timeout=5\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok')
      } else {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n')
        setTimeout(() => socket.destroy(), 50)
      }
    })
    socket.on('error', () => {})
  })
  await new Promise<void>(resolve => raw.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise(resolve => raw.close(resolve)) })
  const rawUrl = `http://127.0.0.1:${(raw.address() as { port: number }).port}`
  const pay = await upstream(t, { name: 'pay' })
  const { port } = await gatewayWith(t, '    http2: true\n',
    route('odd', '/odd/', [{ name: 'raw', url: rawUrl }]) +
    route('pay', '/pay/', [{ name: 'pay', url: pay.url }], '    idempotency: {}\n    limits: { maxBodySize: 1kb }\n') +
    route('stream', '/stream/', [{ name: 'pay', url: pay.url }]))
  const session = connect(`http://127.0.0.1:${port}`)
  t.teardown(() => session.destroy())

  const dup = await h2get(session, { ':method': 'GET', ':path': '/odd/dup' })
  t.equal(dup.status, 200, 'repeated single-value and connection-specific headers do not turn into a 502')
  t.equal(dup.headers['content-type'], 'text/plain', 'the first content-type is kept')
  t.equal(dup.body, 'ok')

  const cut = await h2get(session, { ':method': 'GET', ':path': '/odd/cut' }).then(() => 'complete', (err: NodeJS.ErrnoException) => err.code ?? 'error')
  t.equal(cut, 'ERR_HTTP2_STREAM_ERROR', 'an upstream that dies mid-body: the client\'s stream is reset, not ended cleanly')

  // An unsized body over the route's maxBodySize: 413, and the session goes on.
  const big = await h2get(session, { ':method': 'POST', ':path': '/pay/charge', 'idempotency-key': 'too-big' }, Buffer.alloc(64 * 1024, 1))
  t.equal(big.status, 413)
  const after = await h2get(session, { ':method': 'GET', ':path': '/pay/status' })
  t.equal(after.status, 200, 'the same HTTP/2 connection serves the next request')

  // A client that resets its stream mid-upload on a keyed route: nothing reaches the upstream.
  const before = pay.count
  await new Promise<void>(resolve => {
    const s = session.request({ ':method': 'POST', ':path': '/pay/charge', 'idempotency-key': 'cut-upload' })
    s.on('error', () => {})
    s.write(Buffer.alloc(300, 2))
    setTimeout(() => { s.destroy(); resolve() }, 100) // RST_STREAM without END_STREAM (close() would end the body first)
  })
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(pay.count, before, 'a truncated keyed body is never forwarded')
  // The same on a streamed route (no key, no retries): the upstream never gets a complete request.
  const streamedBefore = pay.received.length
  await new Promise<void>(resolve => {
    const s = session.request({ ':method': 'POST', ':path': '/stream/up' })
    s.on('error', () => {})
    s.write(Buffer.alloc(300, 3))
    setTimeout(() => { s.destroy(); resolve() }, 100) // RST_STREAM without END_STREAM (close() would end the body first)
  })
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(pay.received.length, streamedBefore, 'a streamed body the client reset is never completed upstream')

  const tunnel = await new Promise<{ status: number, headers: Record<string, unknown> }>((resolve, reject) => {
    const s = session.request({ ':method': 'CONNECT', ':authority': 'elsewhere.test:443' })
    s.on('response', h => { resolve({ status: Number(h[':status']), headers: h }); s.destroy() })
    s.on('error', reject)
  })
  t.equal(tunnel.status, 501, 'CONNECT over HTTP/2 is a coded 501')
  t.equal(tunnel.headers['x-gateway-error'], 'GW_ERR_METHOD_NOT_SUPPORTED')
})
