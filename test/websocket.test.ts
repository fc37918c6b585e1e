/**
 * WebSocket / Upgrade pass-through over real sockets, with the real `ws`
 * package as client and as upstream echo server: echo both ways, routing,
 * admitted targets, upstream failures and their recording (breakers),
 * availability, closing and idle timeout of tunnels, CONNECT and h2c
 * refusals, /status counters and shutdown.
 */
import t from 'tap'
import { connect, createServer, Socket, type Server } from 'node:net'
import { IncomingMessage, type IncomingHttpHeaders } from 'node:http'
import { once } from 'node:events'
import { request } from 'undici'
import { WebSocket, WebSocketServer, type RawData } from 'ws'
import { startGateway, policyYaml, route, type Teardown } from './helpers/harness.js'
import { until } from './helpers/load.js'
import { refusedUrl } from './helpers/net.js'
import { admitRequest } from '../gateway/edge/admit.js'
import { scanRequestHeaders } from '../gateway/proxy/headers.js'

interface EchoServer {
  readonly url: string
  readonly wss: WebSocketServer
  /** Request target and headers of every handshake the upstream accepted. */
  readonly seen: Array<{ url: string, headers: IncomingHttpHeaders }>
  /** Server-side sockets of accepted connections. */
  readonly peers: WebSocket[]
}

/** A ws echo server on port 0 that answers every message with the same data and type. */
async function echoServer (t: Teardown, name: string, opts: { refuse?: number } = {}): Promise<EchoServer> {
  const seen: EchoServer['seen'] = []
  const peers: WebSocket[] = []
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: opts.refuse === undefined ? undefined : (_info, cb) => cb(false, opts.refuse, 'Nope'),
    handleProtocols: protocols => protocols.has('chat') ? 'chat' : false
  })
  wss.on('connection', (ws, req) => {
    seen.push({ url: req.url ?? '', headers: req.headers })
    peers.push(ws)
    ws.on('message', (data: RawData, isBinary: boolean) => ws.send(isBinary ? data : `${name}:${String(data)}`, { binary: isBinary }))
  })
  await once(wss, 'listening')
  t.teardown(async () => {
    for (const c of wss.clients) c.terminate()
    await new Promise(resolve => wss.close(resolve))
  })
  const port = (wss.address() as { port: number }).port
  return { url: `http://127.0.0.1:${port}`, wss, seen, peers }
}

interface Opened { ws: WebSocket, headers: IncomingHttpHeaders }

/** Opens a client WebSocket through the gateway; closed in teardown. */
async function open (t: Teardown, url: string, path: string, protocols?: string[]): Promise<Opened> {
  const ws = new WebSocket(url.replace('http:', 'ws:') + path, protocols)
  t.teardown(() => ws.terminate())
  return await new Promise<Opened>((resolve, reject) => {
    let headers: IncomingHttpHeaders = {}
    ws.once('upgrade', (res: IncomingMessage) => { headers = res.headers })
    ws.once('open', () => resolve({ ws, headers })) // same tick as 'upgrade'
    ws.once('unexpected-response', (_req, res: IncomingMessage) => reject(new Error(`no upgrade: ${res.statusCode ?? 0}`)))
    ws.on('error', reject)
  })
}

/** A handshake the gateway (or upstream) answers without switching: status, headers and body. */
async function refused (t: Teardown, url: string, path: string): Promise<{ status: number, headers: IncomingHttpHeaders, body: string }> {
  const ws = new WebSocket(url.replace('http:', 'ws:') + path)
  t.teardown(() => ws.terminate())
  ws.on('error', () => {})
  const [, res] = await once(ws, 'unexpected-response') as [unknown, IncomingMessage]
  const chunks: Buffer[] = []
  for await (const c of res) chunks.push(c as Buffer)
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }
}

/** Writes a raw request head and reads the whole answer until the gateway closes. */
async function raw (t: Teardown, url: string, head: string): Promise<{ status: number, text: string, json: any }> {
  const u = new URL(url)
  const sock = connect(Number(u.port), u.hostname)
  t.teardown(() => sock.destroy())
  sock.write(head)
  const chunks: Buffer[] = []
  sock.on('data', (c: Buffer) => chunks.push(c))
  await once(sock, 'close')
  const text = Buffer.concat(chunks).toString()
  const body = text.slice(text.indexOf('\r\n\r\n') + 4)
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, json: body.startsWith('{') ? JSON.parse(body) : null }
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const wsHead = (target: string, extra = ''): string =>
  `GET ${target} HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n${extra}\r\n`

async function status (adminUrl: string): Promise<any> {
  return await (await request(`${adminUrl}/status`)).body.json()
}

async function eventually (cond: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!await cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

const nextMessage = async (ws: WebSocket): Promise<{ data: Buffer, isBinary: boolean }> => {
  const [data, isBinary] = await once(ws, 'message') as [Buffer, boolean]
  return { data, isBinary }
}

t.test('text and binary messages are echoed through the gateway', async t => {
  const up = await echoServer(t, 'a')
  const { url } = await startGateway(t, policyYaml(route('live', '/ws', [{ name: 'a', url: up.url }])))
  const { ws, headers } = await open(t, url, '/ws/chat?room=1', ['chat'])
  t.equal(ws.protocol, 'chat', 'Sec-WebSocket-Protocol negotiated with the upstream')
  t.equal(headers['x-gateway-upstream'], 'a', '101 names the upstream')
  t.match(headers['x-request-id'], /^[0-9a-f-]{36}$/, '101 carries the request id')
  t.equal(headers.connection?.toLowerCase(), 'upgrade')
  t.equal(headers.upgrade?.toLowerCase(), 'websocket')

  ws.send('hello')
  const text = await nextMessage(ws)
  t.equal(text.isBinary, false)
  t.equal(String(text.data), 'a:hello')
  const bytes = Buffer.from([0, 1, 2, 250, 255])
  ws.send(bytes)
  const bin = await nextMessage(ws)
  t.equal(bin.isBinary, true)
  t.same([...bin.data], [...bytes], 'binary frames pass unchanged')
  const big = Buffer.alloc(512 * 1024, 7)
  ws.send(big)
  t.equal((await nextMessage(ws)).data.length, big.length, 'a 512 KiB message goes both ways')

  const seen = up.seen[0]
  t.equal(seen?.url, '/ws/chat?room=1', 'path and query forwarded')
  t.equal(seen?.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(seen?.headers['x-forwarded-proto'], 'http')
  t.equal(seen?.headers['x-request-id'], headers['x-request-id'], 'request id forwarded')
  t.equal(seen?.headers['sec-websocket-protocol'], 'chat', 'Sec-WebSocket-* headers forwarded')
  t.equal(seen?.headers.host, new URL(url).host, 'client Host preserved')
})

t.test('routing: no route is a 404 problem; stripPrefix and base path apply', async t => {
  const up = await echoServer(t, 'a')
  const routes = route('live', '/ws', [{ name: 'a', url: `${up.url}/v2` }], '    stripPrefix: true\n')
  const { url } = await startGateway(t, policyYaml(routes))
  const miss = await refused(t, url, '/other')
  t.equal(miss.status, 404)
  t.equal(miss.headers['x-gateway-error'], 'GW_ERR_ROUTE_NOT_FOUND')
  t.equal(JSON.parse(miss.body).code, 'GW_ERR_ROUTE_NOT_FOUND')
  t.equal(up.seen.length, 0, 'nothing reached the upstream')
  await open(t, url, '/ws/feed?x=1')
  t.equal(up.seen[0]?.url, '/v2/feed?x=1', 'prefix stripped, base path prepended')
})

t.test('the admitted (normalized) target is what is forwarded', async t => {
  const up = await echoServer(t, 'a')
  const { url, gw } = await startGateway(t, policyYaml(route('live', '/ws', [{ name: 'a', url: up.url }])))
  const target = '/ws/a/./b/../c?q=1'
  const fake = fakeRequest(target)
  const admitted = admitRequest(fake, gw.runtime.snapshot.listeners[0]!, scanRequestHeaders(fake.rawHeaders, false))
  const u = new URL(url)
  const sock = connect(Number(u.port), u.hostname)
  t.teardown(() => sock.destroy())
  sock.write(wsHead(target))
  const [first] = await once(sock, 'data') as [Buffer]
  const head = first.toString('latin1')
  if ('reject' in admitted) {
    t.match(head, new RegExp(`^HTTP/1\\.1 ${admitted.reject.status} `), 'admission refusal on the socket')
    t.match(head, `x-gateway-error: ${admitted.reject.code}`)
    return
  }
  t.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
  t.equal(up.seen[0]?.url, admitted.target, 'the upstream got the admitted target')
})

t.test('an upstream that refuses the handshake: its status is passed back and counted', async t => {
  const up = await echoServer(t, 'a', { refuse: 403 })
  const { url, adminUrl } = await startGateway(t, policyYaml(route('live', '/ws', [{ name: 'a', url: up.url }])))
  const res = await refused(t, url, '/ws/x')
  t.equal(res.status, 403, 'upstream status passed back')
  t.equal(res.headers['x-gateway-upstream'], 'a')
  t.equal(res.headers['x-gateway-error'], undefined, 'not a gateway error')
  const s = await status(adminUrl)
  t.match(s.routes[0].websocket, { upgraded: 0, refused: 1, failed: 0, active: 0 })
  t.equal(s.routes[0].upstreams[0].total['4xx'], 1, 'recorded as a 4xx of the upstream')
})

t.test('upstream down: 502 GW_ERR_UPSTREAM_CONNECT, recorded and counted', async t => {
  const { url, adminUrl } = await startGateway(t, policyYaml(route('live', '/ws', [{ name: 'a', url: await refusedUrl() }])))
  const res = await refused(t, url, '/ws/x')
  t.equal(res.status, 502)
  t.equal(res.headers['x-gateway-error'], 'GW_ERR_UPSTREAM_CONNECT')
  t.equal(res.headers['x-gateway-upstream'], 'a')
  t.match(JSON.parse(res.body), { code: 'GW_ERR_UPSTREAM_CONNECT', route: 'live', upstream: 'a' })
  const s = await status(adminUrl)
  t.match(s.routes[0].websocket, { failed: 1, upgraded: 0, active: 0 })
  t.equal(s.routes[0].upstreams[0].total.connect, 1, 'the connect failure is in the upstream stats')
})

t.test('handshake timeout is a 504 (timeouts.responseHeaders)', async t => {
  const silent: Server = createServer(s => { s.on('data', () => {}) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  const held: Socket[] = []
  silent.on('connection', s => held.push(s))
  t.teardown(async () => { for (const s of held) s.destroy(); await new Promise(resolve => silent.close(resolve)) })
  const upUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`
  const { url, adminUrl } = await startGateway(t, policyYaml(route('live', '/ws', [{ name: 'a', url: upUrl }], '    timeouts: { responseHeaders: 200ms }\n')))
  const started = Date.now()
  const res = await refused(t, url, '/ws/x')
  t.equal(res.status, 504)
  t.equal(res.headers['x-gateway-error'], 'GW_ERR_UPSTREAM_TIMEOUT')
  t.ok(Date.now() - started < 3000, 'bounded by the route timeout')
  const s = await status(adminUrl)
  t.equal(s.routes[0].upstreams[0].total.timeout, 1, 'recorded as a timeout of the upstream')
  t.match(s.routes[0].websocket, { failed: 1, upgraded: 0 }, 'counted as a failed handshake')
})

t.test('breakers see failed handshakes; an unavailable upstream is not picked', async t => {
  const b = await echoServer(t, 'b')
  const yaml = policyYaml(route('live', '/ws', [{ name: 'a', url: await refusedUrl() }, { name: 'b', url: b.url }],
    '    breaker: { consecutiveFailures: 2, openFor: 60s }\n'))
  const { url, adminUrl, gw } = await startGateway(t, yaml)
  const who: string[] = []
  for (let i = 0; i < 8; i++) {
    const ws = new WebSocket(url.replace('http:', 'ws:') + '/ws/x')
    t.teardown(() => ws.terminate())
    ws.on('error', () => {})
    const [ev, arg1, arg2] = await Promise.race([
      once(ws, 'upgrade').then(a => ['upgrade', ...a]),
      once(ws, 'unexpected-response').then(a => ['refused', ...a])
    ]) as [string, IncomingMessage, IncomingMessage]
    who.push(ev === 'upgrade' ? String(arg1.headers['x-gateway-upstream']) : `${arg2.statusCode ?? 0}`)
    ws.terminate()
  }
  t.equal(who.filter(w => w === '502').length, 2, `two failures open the breaker (${who.join(',')})`)
  t.same(who.slice(-4), ['b', 'b', 'b', 'b'], 'then only b is picked')
  const s = await status(adminUrl)
  t.equal(s.routes[0].upstreams[0].breaker, 'open')

  // Marked unavailable by the control plane (health check): b is not picked either → 503.
  const bUp = gw.runtime.routes[0]!.upstreams[1]!
  bUp.health.probeDown = true
  t.teardown(() => { bUp.health.probeDown = false })
  const before = b.seen.length
  const none = await refused(t, url, '/ws/x')
  t.equal(none.status, 503)
  t.equal(none.headers['x-gateway-error'], 'GW_ERR_NO_HEALTHY_UPSTREAM')
  t.ok(Number(none.headers['retry-after']) >= 1, 'Retry-After set')
  t.equal(b.seen.length, before, 'the unavailable upstream got no handshake')
})

t.test('an upstream marked unavailable is skipped for its peer', async t => {
  const a = await echoServer(t, 'a')
  const b = await echoServer(t, 'b')
  const { url, gw } = await startGateway(t, policyYaml(route('live', '/ws', [{ name: 'a', url: a.url }, { name: 'b', url: b.url }])))
  gw.runtime.routes[0]!.upstreams[0]!.health.ejectedUntil = Number.MAX_SAFE_INTEGER
  for (let i = 0; i < 4; i++) {
    const { ws, headers } = await open(t, url, '/ws/x')
    t.equal(headers['x-gateway-upstream'], 'b')
    ws.terminate()
  }
  t.equal(a.seen.length, 0, 'the ejected upstream got nothing')
})

t.test('closing either side closes the other', async t => {
  const up = await echoServer(t, 'a')
  const { url, adminUrl } = await startGateway(t, policyYaml(route('live', '/ws', [{ name: 'a', url: up.url }])))

  const c1 = await open(t, url, '/ws/1')
  await until(() => up.peers.length === 1, 5000, 'upstream peer 1')
  const p1 = up.peers[0]!
  t.equal((await status(adminUrl)).routes[0].websocket.active, 1, 'one tunnel open')
  const p1Closed = once(p1, 'close')
  c1.ws.terminate() // the client's TCP connection goes away without a close frame
  await p1Closed
  t.pass('client gone → the upstream connection closed')

  const c2 = await open(t, url, '/ws/2')
  await until(() => up.peers.length === 2, 5000, 'upstream peer 2')
  const c2Closed = once(c2.ws, 'close')
  up.peers[1]!.terminate()
  await c2Closed
  t.pass('upstream gone → the client connection closed')

  const c3 = await open(t, url, '/ws/3')
  await until(() => up.peers.length === 3, 5000, 'upstream peer 3')
  const p3Closed = once(up.peers[2]!, 'close')
  c3.ws.close(1000, 'bye')
  const [code] = await p3Closed as [number]
  t.equal(code, 1000, 'a clean close handshake passes through')
  await until(() => c3.ws.readyState === WebSocket.CLOSED, 5000, 'client closed')
  t.match((await status(adminUrl)).routes[0].websocket, { upgraded: 3 })
  await until(() => up.wss.clients.size === 0, 5000, 'upstream has no clients left')
  await eventually(async () => (await status(adminUrl)).routes[0].websocket.active === 0, 'no tunnel left')
  t.pass('no tunnel left')
})

t.test('the idle timeout closes both connections; traffic keeps a tunnel open', async t => {
  const up = await echoServer(t, 'a')
  const { url, adminUrl } = await startGateway(t, policyYaml(route('live', '/ws', [{ name: 'a', url: up.url }], '    websocket: { idleTimeout: 400ms }\n')))
  const busy = await open(t, url, '/ws/busy')
  const quiet = await open(t, url, '/ws/quiet')
  await until(() => up.peers.length === 2, 5000, 'both upstream peers')
  const quietPeer = up.peers[up.seen.findIndex(h => h.url === '/ws/quiet')]!
  const started = Date.now()
  const clientClosed = once(quiet.ws, 'close')
  const peerClosed = once(quietPeer, 'close')
  const ticker = setInterval(() => busy.ws.send('tick'), 100)
  t.teardown(() => clearInterval(ticker))
  await Promise.all([clientClosed, peerClosed])
  const took = Date.now() - started
  t.ok(took >= 300 && took < 3000, `quiet tunnel closed after ~400ms (${took}ms)`)
  await new Promise(resolve => setTimeout(resolve, 600))
  t.equal(busy.ws.readyState, WebSocket.OPEN, 'the busy tunnel is still open after more than the idle timeout')
  clearInterval(ticker)
  t.match((await status(adminUrl)).routes[0].websocket, { idleClosed: 1, active: 1, idleTimeoutMs: 400 })
})

t.test('listener timeouts and the connection cap do not cut a tunnel', async t => {
  const up = await echoServer(t, 'a')
  const yaml = policyYaml(route('live', '/ws', [{ name: 'a', url: up.url }]))
    .replace('    port: 0\nadmin', '    port: 0\n    timeouts: { requestHeaders: 300ms, keepAlive: 300ms }\n    limits: { maxConnections: 1 }\nadmin')
  const { url } = await startGateway(t, yaml)
  const { ws } = await open(t, url, '/ws/quiet')
  const late = await raw(t, url, 'GET /ws/x HTTP/1.1\r\nHost: gw.test\r\n\r\n')
  t.equal(late.status, 503, 'a newcomer at the cap is refused…')
  t.equal(ws.readyState, WebSocket.OPEN, '…rather than the tunnel being evicted as idle')
  await new Promise(resolve => setTimeout(resolve, 1200))
  t.equal(ws.readyState, WebSocket.OPEN, 'a quiet tunnel outlives requestHeaders and keepAlive')
  ws.send('still')
  t.equal(String((await nextMessage(ws)).data), 'a:still')
})

t.test('CONNECT is refused with GW_ERR_METHOD_NOT_SUPPORTED', async t => {
  const up = await echoServer(t, 'a')
  const { url } = await startGateway(t, policyYaml(route('live', '/', [{ name: 'a', url: up.url }])))
  const res = await raw(t, url, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
  t.equal(res.status, 501)
  t.match(res.text, /x-gateway-error: GW_ERR_METHOD_NOT_SUPPORTED\r\n/)
  t.match(res.text, /content-type: application\/problem\+json\r\n/)
  t.match(res.json, { code: 'GW_ERR_METHOD_NOT_SUPPORTED', status: 501 })
})

t.test('Upgrade: h2c (and a route with websocket disabled) get GW_ERR_UPGRADE_NOT_SUPPORTED', async t => {
  const up = await echoServer(t, 'a')
  const routes = route('off', '/off', [{ name: 'a', url: up.url }], '    websocket: { enabled: false }\n') +
    route('live', '/', [{ name: 'a', url: up.url }])
  const { url } = await startGateway(t, policyYaml(routes))
  const h2c = await raw(t, url, 'GET /x HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n')
  t.equal(h2c.status, 501)
  t.match(h2c.text, /x-gateway-error: GW_ERR_UPGRADE_NOT_SUPPORTED\r\n/)
  t.match(h2c.json, { code: 'GW_ERR_UPGRADE_NOT_SUPPORTED', detail: /h2c/ })
  const off = await raw(t, url, wsHead('/off/x'))
  t.equal(off.status, 501)
  t.match(off.json, { code: 'GW_ERR_UPGRADE_NOT_SUPPORTED', route: 'off' })
  t.equal(up.seen.length, 0, 'nothing reached the upstream')
})

t.test('/status counts tunnels per route', async t => {
  const up = await echoServer(t, 'a')
  const { url, adminUrl } = await startGateway(t, policyYaml(route('live', '/ws', [{ name: 'a', url: up.url }])))
  t.match((await status(adminUrl)).routes[0].websocket, { enabled: true, idleTimeoutMs: 3_600_000, active: 0, upgraded: 0, refused: 0, failed: 0, idleClosed: 0 }, 'defaults: enabled, 1h idle')
  const a = await open(t, url, '/ws/1')
  await open(t, url, '/ws/2')
  t.match((await status(adminUrl)).routes[0].websocket, { active: 2, upgraded: 2 })
  a.ws.terminate()
  await eventually(async () => (await status(adminUrl)).routes[0].websocket.active === 1, 'one tunnel left')
  const s = await status(adminUrl)
  t.match(s.routes[0].websocket, { active: 1, upgraded: 2 })
  t.equal(s.routes[0].upstreams[0].total['2xx'], 2, 'accepted handshakes recorded as successes')
})

t.test('shutdown ends open tunnels', async t => {
  const up = await echoServer(t, 'a')
  const { url, gw } = await startGateway(t, policyYaml(route('live', '/ws', [{ name: 'a', url: up.url }])))
  const { ws } = await open(t, url, '/ws/1')
  await until(() => up.peers.length === 1, 5000, 'upstream peer')
  const clientClosed = once(ws, 'close')
  const peerClosed = once(up.peers[0]!, 'close')
  const started = Date.now()
  await gw.close()
  await Promise.all([clientClosed, peerClosed])
  t.ok(Date.now() - started < 3000, 'close did not wait for the tunnel')
})

function fakeRequest (target: string): IncomingMessage {
  const req = new IncomingMessage(new Socket())
  Object.assign(req, { method: 'GET', url: target, httpVersion: '1.1', httpVersionMajor: 1, httpVersionMinor: 1 })
  req.rawHeaders = ['Host', 'gw.test', 'Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Version', '13', 'Sec-WebSocket-Key', KEY]
  req.headers = { host: 'gw.test', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': KEY }
  return req
}
