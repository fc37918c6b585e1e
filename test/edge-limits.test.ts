/**
 * Client-side limits over raw sockets: header count and size (431, never a
 * truncated request upstream), slow heads and bodies (408), connection cap,
 * keep-alive idle time, maxBodySize (413), Expect: 100-continue, and 1xx
 * interim answers from upstreams. Short configured windows; bounds loose
 * enough for a busy 2-core machine.
 */
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { request } from 'undici'
import { startGateway, policyYaml, route, upstream, type Teardown } from './helpers/harness.js'
import { rawExchange, rawUpstream, statusOf, problemOf } from './helpers/raw.js'

const portOf = (url: string): number => Number(new URL(url).port)
const withListener = (yaml: string, extra: string): string => yaml.replace('    port: 0\nadmin', `    port: 0\n${extra}admin`)

let lastAdmin = ''
async function gateway (t: Teardown, upUrl: string, listenerExtra = '', routeExtra = ''): Promise<number> {
  const { url, adminUrl } = await startGateway(t, withListener(policyYaml(route('r', '/', [{ name: 'a', url: upUrl }], routeExtra)), listenerExtra))
  lastAdmin = adminUrl
  return portOf(url)
}

function open (port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s))
    s.on('error', reject)
  })
}

function readUntil (s: Socket, pattern: RegExp, ms: number): Promise<{ text: string, ms: number, closed: boolean }> {
  const start = Date.now()
  return new Promise(resolve => {
    let text = ''
    let done = false
    const finish = (closed: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      s.off('data', onData)
      resolve({ text, ms: Date.now() - start, closed })
    }
    const onData = (d: Buffer): void => { text += d.toString('latin1'); if (pattern.test(text)) finish(false) }
    const timer = setTimeout(() => finish(false), ms)
    s.on('data', onData)
    s.once('close', () => finish(true))
  })
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

t.test('more header fields than maxHeaderCount: 431, and the request never reaches the upstream truncated', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url)
  let many = ''
  for (let i = 0; i < 1100; i++) many += `x-h${i}: v\r\n`
  const r = await rawExchange(gw, `POST /pay HTTP/1.1\r\nHost: a\r\n${many}Content-Length: 5\r\nConnection: close\r\n\r\nhello`)
  t.equal(statusOf(r), 431)
  t.equal(problemOf(r).code, 'GW_ERR_HEADERS_TOO_LARGE')
  let hundredOne = ''
  for (let i = 0; i < 100; i++) hundredOne += `x-h${i}: v\r\n`
  t.equal(statusOf(await rawExchange(gw, `GET /x HTTP/1.1\r\nHost: a\r\n${hundredOne}Connection: close\r\n\r\n`)), 431, '101 fields with Host > default 100')
  t.equal(up.count, 0, 'nothing was forwarded')
  let ninetyNine = ''
  for (let i = 0; i < 98; i++) ninetyNine += `x-h${i}: v\r\n`
  t.equal(statusOf(await rawExchange(gw, `GET /x HTTP/1.1\r\nHost: a\r\n${ninetyNine}Connection: close\r\n\r\n`)), 200, '100 fields pass')
  const big = 'x'.repeat(40 * 1024)
  const huge = await rawExchange(gw, `GET /x HTTP/1.1\r\nHost: a\r\nx-big: ${big}\r\nConnection: close\r\n\r\n`)
  t.equal(statusOf(huge), 431, 'a 40 KiB head is over the 32kb default')
  t.equal(problemOf(huge).code, 'GW_ERR_HEADERS_TOO_LARGE')
  t.equal(up.count, 1)
})

t.test('slowloris: a request head that does not finish within requestHeaders gets 408', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url, '    timeouts: { requestHeaders: 400ms }\n')
  const s = await open(gw)
  s.write('GET /x HTTP/1.1\r\nHost: a\r\n')
  const drip = setInterval(() => { if (!s.destroyed) s.write('x-a: b\r\n') }, 100)
  const r = await readUntil(s, /\r\n\r\n\{.*\}$/s, 5000)
  clearInterval(drip)
  s.destroy()
  t.equal(statusOf(r.text), 408)
  t.equal(problemOf(r.text).code, 'GW_ERR_REQUEST_TIMEOUT')
  t.ok(r.ms >= 300 && r.ms < 3000, `answered after ${r.ms} ms`)
  t.equal(up.count, 0)
})

t.test('a body trickled below minBodyRate, or stalled past bodyIdle, gets 408; the upstream never gets it whole', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url, '    timeouts: { requestBody: 500ms, bodyIdle: 600ms }\n    limits: { minBodyRate: 100b }\n')
  const s = await open(gw)
  s.write('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n')
  const drip = setInterval(() => { if (!s.destroyed) s.write('a') }, 100)
  const r = await readUntil(s, /\r\n\r\n\{.*\}$/s, 8000)
  clearInterval(drip)
  s.destroy()
  t.equal(statusOf(r.text), 408, 'trickle')
  t.match(problemOf(r.text).detail, /slower than 100 bytes\/s/)
  t.ok(r.ms < 5000, `answered after ${r.ms} ms`)

  const s2 = await open(gw)
  s2.write('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n' + 'b'.repeat(400))
  const r2 = await readUntil(s2, /\r\n\r\n\{.*\}$/s, 8000)
  s2.destroy()
  t.equal(statusOf(r2.text), 408, 'stall')
  t.match(problemOf(r2.text).detail, /bodyIdle/)
  t.ok(r2.ms >= 500 && r2.ms < 5000, `answered after ${r2.ms} ms`)
  await sleep(100)
  t.equal(up.received.length, 0, 'no complete request reached the upstream')
})

t.test('client timers never cut a slow upstream', async t => {
  const up = await upstream(t, { fault: { latencyMs: 1500 } })
  const gw = await gateway(t, up.url, '    timeouts: { requestHeaders: 300ms, requestBody: 300ms, bodyIdle: 300ms }\n')
  const res = await request(`http://127.0.0.1:${gw}/pay`, { method: 'POST', body: 'x'.repeat(5000) })
  t.equal(res.statusCode, 200)
  t.equal(((await res.body.json()) as { bodyBytes: number }).bodyBytes, 5000)
})

t.test('maxConnections: idle connections make room; when all are busy the newcomer gets 503', async t => {
  const up = await upstream(t, { fault: { latencyMs: 1500 } })
  const gw = await gateway(t, up.url, '    limits: { maxConnections: 4 }\n')
  const idle: Socket[] = []
  for (let i = 0; i < 4; i++) idle.push(await open(gw))
  await sleep(50)
  const fresh = await request(`http://127.0.0.1:${gw}/x`, { headers: { connection: 'close' } }).catch(e => e as Error)
  t.equal((fresh as { statusCode?: number }).statusCode, 200, 'served: an idle connection was closed to make room')
  if (!(fresh instanceof Error)) await fresh.body.text()
  await sleep(50)
  t.ok(idle.filter(s => s.destroyed || s.readableEnded).length >= 1 || idle.some(s => s.closed), 'an idle connection was closed')
  for (const s of idle) s.destroy()
  await sleep(50)
  const busy: Socket[] = []
  for (let i = 0; i < 4; i++) {
    const s = await open(gw)
    s.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n')
    busy.push(s)
  }
  await sleep(200)
  const r = await rawExchange(gw, 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 3000)
  t.equal(statusOf(r), 503)
  t.equal(problemOf(r).code, 'GW_ERR_TOO_MANY_CONNECTIONS')
  t.match(r, /\r\nretry-after: 1\r\n/)
  const answers = await Promise.all(busy.map(s => readUntil(s, /\r\n\r\n\{.*\}$/s, 4000)))
  t.same(answers.map(a => statusOf(a.text)), [200, 200, 200, 200], 'the busy connections were served')
  for (const s of busy) s.destroy()
  const status = await (await request(`${lastAdmin}/status`)).body.json() as { listeners: Array<{ connections: { evicted: number, refused: number } }> }
  t.ok((status.listeners[0]?.connections.evicted ?? 0) >= 1, '/status counts evicted idle connections')
  t.equal(status.listeners[0]?.connections.refused, 1, '/status counts the refused one')
})

t.test('at the cap, connections that never sent a request go before a real keep-alive client', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url, '    limits: { maxConnections: 3 }\n')
  const client = await open(gw)
  client.write('GET /a HTTP/1.1\r\nHost: a\r\n\r\n')
  t.equal(statusOf((await readUntil(client, /\}$/, 2000)).text), 200)
  const flood = [await open(gw), await open(gw)]
  await sleep(50)
  const newcomers = [await open(gw), await open(gw)]
  await sleep(50)
  t.ok(flood.every(s => s.destroyed || s.readableEnded), 'the oldest never-used connections were closed to make room')
  t.ok(newcomers.every(s => !s.destroyed && !s.readableEnded), 'the newer ones stay')
  const r = await rawExchange(gw, 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 2000)
  t.equal(statusOf(r), 200, 'one more newcomer is served (it made room too)')
  t.notOk(client.destroyed || client.readableEnded, 'the keep-alive client kept its connection throughout')
  flood.push(...newcomers)
  client.write('GET /b HTTP/1.1\r\nHost: a\r\n\r\n')
  t.equal(statusOf((await readUntil(client, /\}$/, 2000)).text), 200, 'and is served on it')
  for (const s of [client, ...flood]) s.destroy()
})

t.test('an idle keep-alive connection is closed after timeouts.keepAlive', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url, '    timeouts: { keepAlive: 300ms }\n')
  const s = await open(gw)
  s.write('GET /x HTTP/1.1\r\nHost: a\r\n\r\n')
  const first = await readUntil(s, /\}$/, 2000)
  t.equal(statusOf(first.text), 200)
  const closed = await readUntil(s, /$^/, 4000)
  t.ok(closed.closed, `closed after ${closed.ms} ms idle`)
  t.ok(closed.ms >= 200 && closed.ms < 3000)
})

t.test('maxBodySize: 413 before anything is sent upstream; a chunked body is cut at the limit', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url, '', '    limits: { maxBodySize: 1kb }\n')
  const r = await rawExchange(gw, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n')
  t.equal(statusOf(r), 413, 'declared too large: answered without reading')
  t.equal(problemOf(r).code, 'GW_ERR_BODY_TOO_LARGE')
  const chunk = 'y'.repeat(600)
  const c = await rawExchange(gw, `POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`)
  t.equal(statusOf(c), 413, 'chunked over the limit')
  t.equal(problemOf(c).code, 'GW_ERR_BODY_TOO_LARGE')
  await sleep(100)
  t.equal(up.received.length, 0, 'the upstream never received a complete request')
  const ok = await request(`http://127.0.0.1:${gw}/x`, { method: 'POST', body: 'z'.repeat(1024) })
  t.equal(ok.statusCode, 200, 'at the limit passes')
  await ok.body.text()
})

t.test('keyed and retried routes: slow bodies get 408 and oversize chunked bodies 413 before anything is sent', async t => {
  const up = await upstream(t)
  const keyed = '    idempotency: {}\n    retry: {}\n    limits: { maxBodySize: 1kb }\n'
  const gw = await gateway(t, up.url, '    timeouts: { requestBody: 300ms, bodyIdle: 400ms }\n', keyed)
  const s = await open(gw)
  s.write('POST /pay HTTP/1.1\r\nHost: a\r\nIdempotency-Key: k-slow\r\nContent-Length: 100\r\n\r\nabc')
  const r = await readUntil(s, /\r\n\r\n\{.*\}$/s, 5000)
  s.destroy()
  t.equal(statusOf(r.text), 408, 'a keyed body that stalls')
  const chunk = 'y'.repeat(700)
  const c = await rawExchange(gw, `POST /pay HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2bc\r\n${chunk}\r\n2bc\r\n${chunk}\r\n0\r\n\r\n`)
  t.equal(statusOf(c), 413, 'an unkeyed chunked body over maxBodySize on a retried route')
  await sleep(100)
  t.equal(up.received.length, 0, 'nothing complete reached the upstream')
  const again = await request(`http://127.0.0.1:${gw}/pay`, { method: 'POST', body: 'x'.repeat(100), headers: { 'idempotency-key': 'k-slow' } })
  t.equal(again.statusCode, 200, 'the key of the cut request was never claimed')
  await again.body.text()
})

t.test('Expect: 100-continue: 100 only when the body will be read; final answers come without it', async t => {
  const up = await upstream(t)
  const { url } = await startGateway(t, policyYaml(route('r', '/pay/', [{ name: 'a', url: up.url }], '    limits: { maxBodySize: 1kb }\n')))
  const gw = portOf(url)
  const s = await open(gw)
  s.write('POST /pay/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
  const cont = await readUntil(s, /\r\n\r\n/, 2000)
  t.match(cont.text, /^HTTP\/1\.1 100 Continue\r\n\r\n$/, 'asked for the body')
  s.write('hello')
  const fin = await readUntil(s, /\}$/, 2000)
  t.equal(statusOf(fin.text), 200)
  t.equal(up.received.at(-1)?.bodyBytes, 5)
  t.equal(up.received.at(-1)?.headers.expect, undefined, 'Expect is not forwarded')
  s.destroy()
  for (const [req, status] of [
    ['POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n', 404],
    ['POST /pay/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n', 413]
  ] as const) {
    const r = await rawExchange(gw, req, 1500)
    t.equal(statusOf(r), status, `final ${status} without a 100 first`)
  }
})

t.test('unsolicited 1xx from the upstream are passed over; the final response is delivered', async t => {
  for (const interim of ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n']) {
    const up = await rawUpstream(t, { interim })
    const gw = await gateway(t, up.url)
    for (let i = 0; i < 3; i++) {
      const res = await request(`http://127.0.0.1:${gw}/x`, { method: i === 1 ? 'POST' : 'GET', body: i === 1 ? 'body' : undefined })
      t.equal(res.statusCode, 200, JSON.stringify(interim.slice(0, 24)))
      t.equal(await res.body.text(), 'ok')
    }
    t.equal(up.heads.length, 3, 'each request sent once, on reused connections')
  }
})
