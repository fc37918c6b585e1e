/**
 * The fault upstream over real sockets: every behaviour the gateway tests and
 * chaos drills rely on. Timing checks are lower bounds only (busy CI boxes
 * make upper bounds flaky); the one upper bound (close() with a hung request)
 * is generous.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { performance } from 'node:perf_hooks'
import http from 'node:http'
import { Agent, errors, request } from 'undici'
import { startFaultUpstream, type FaultUpstream, type FaultUpstreamOptions } from '../scripts/lib/fault-upstream.js'
import { startDemoUpstreams, DEMO_NAMES } from '../scripts/demo-upstreams.js'

const dispatcher = new Agent()
t.teardown(() => dispatcher.close())

/** Starts an upstream that is closed when the (sub)test ends. */
async function start (t: { teardown: (fn: () => unknown) => void }, opts: FaultUpstreamOptions = {}): Promise<FaultUpstream> {
  const u = await startFaultUpstream(opts)
  t.teardown(() => u.close())
  return u
}

async function get (url: string, init: Parameters<typeof request>[1] = {}) {
  const res = await request(url, { dispatcher, ...init })
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: res.headers, body, trailers: res.trailers }
}

async function json (url: string, init: Parameters<typeof request>[1] = {}): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await get(url, init)
  return { status: res.status, body: JSON.parse(res.body.toString('utf8')) as Record<string, unknown> }
}

/** Polls until cond() holds; fails the wait after timeoutMs. */
async function until (cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** A random() that replays the given values (then keeps returning the last one). */
function sequence (...values: number[]): () => number {
  let i = 0
  return () => values[Math.min(i++, values.length - 1)] ?? 0
}

t.test('echo counts and hashes a streamed body', async t => {
  const u = await start(t, { name: 'echo' })
  const hash = createHash('sha256')
  let total = 0
  // 8 MiB in 64 KiB random chunks, sent chunked: the upstream must hash as it streams.
  async function * chunks () {
    for (let i = 0; i < 128; i++) {
      const c = randomBytes(64 * 1024)
      hash.update(c)
      total += c.length
      yield c
    }
  }
  const res = await json(`${u.url}/some/path?q=1`, {
    method: 'PUT',
    headers: { 'x-test': 'abc' },
    body: Readable.from(chunks())
  })
  const sha = hash.digest('hex')
  t.equal(res.status, 200)
  t.equal(res.body.upstream, 'echo')
  t.equal(res.body.method, 'PUT')
  t.equal(res.body.url, '/some/path?q=1')
  t.equal(res.body.bodyBytes, 8 * 1024 * 1024)
  t.equal(res.body.bodyBytes, total)
  t.equal(res.body.bodySha256, sha)
  t.equal((res.body.headers as Record<string, string>)['x-test'], 'abc')
  t.equal(u.count, 1)
  t.equal(u.received.length, 1)
  const r = u.received[0]
  t.equal(r?.bodySha256, sha)
  t.equal(r?.bodyBytes, total)
  t.equal(r?.method, 'PUT')
  t.ok(r?.rawHeaders.includes('x-test'))
  t.type(r?.at, 'number')
  t.equal(u.inflight, 0)
})

t.test('echo sets x-upstream-name and content-type', async t => {
  const u = await start(t, { name: 'named' })
  const res = await get(`${u.url}/`)
  t.equal(res.headers['x-upstream-name'], 'named')
  t.match(res.headers['content-type'], /^application\/json/)
  const body = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>
  t.equal(body.bodyBytes, 0)
  t.equal(body.bodySha256, createHash('sha256').digest('hex'))
})

t.test('keep-alive: a second request reuses the socket', async t => {
  const u = await start(t)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const once = () => new Promise<boolean>((resolve, reject) => {
    const req = http.get(`${u.url}/`, { agent }, res => {
      res.resume()
      res.on('end', () => resolve(req.reusedSocket))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
  t.equal(await once(), false)
  await new Promise(resolve => setImmediate(resolve)) // let the socket go back to the pool
  t.equal(await once(), true)
  t.equal(u.count, 2)
})

t.test('/status/<code>', async t => {
  const u = await start(t, { name: 's' })
  const r503 = await json(`${u.url}/status/503?ignored=1`)
  t.equal(r503.status, 503)
  t.same(r503.body, { upstream: 's', status: 503 })
  const r418 = await json(`${u.url}/status/418`)
  t.equal(r418.status, 418)
  const r204 = await get(`${u.url}/status/204`)
  t.equal(r204.status, 204)
  t.equal(r204.body.length, 0)
  const bad = await get(`${u.url}/status/150`)
  t.equal(bad.status, 400)
})

t.test('/bytes/<n> streams exactly n bytes with content-length', async t => {
  const u = await start(t)
  const n = 1_000_003 // not a multiple of the 64 KiB chunk
  const res = await request(`${u.url}/bytes/${n}`, { dispatcher })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-length'], String(n))
  t.equal(res.headers['content-type'], 'application/octet-stream')
  let got = 0
  for await (const chunk of res.body) got += (chunk as Buffer).length
  t.equal(got, n)
  const zero = await get(`${u.url}/bytes/0`)
  t.equal(zero.headers['content-length'], '0')
  t.equal(zero.body.length, 0)
})

t.test('/headers carries hop-by-hop and end-to-end headers', async t => {
  const u = await start(t, { name: 'h' })
  const res = await get(`${u.url}/headers`)
  t.equal(res.status, 200)
  t.equal(res.headers.connection, 'x-custom-hop, keep-alive')
  t.equal(res.headers['keep-alive'], 'timeout=77')
  t.equal(res.headers['x-custom-hop'], '1')
  t.equal(res.headers['proxy-authenticate'], 'Basic')
  t.equal(res.headers.trailer, 'x-t')
  t.equal(res.headers['x-end-to-end'], 'yes')
  t.same(res.headers['set-cookie'], ['a=1', 'b=2'])
  t.same(res.trailers, { 'x-t': '1' })
  const body = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>
  t.equal(body.upstream, 'h')
  t.equal(body.url, '/headers')
})

t.test('/slow-body sends headers first, then chunks apart', async t => {
  const u = await start(t)
  const began = performance.now()
  const res = await request(`${u.url}/slow-body?chunks=3&gapMs=100`, { dispatcher })
  const headersAt = performance.now()
  const text = await res.body.text()
  const endAt = performance.now()
  t.equal(res.statusCode, 200)
  t.equal(text, 'chunk\n'.repeat(3))
  // If the body were sent at once with the headers, end - headers would be ~0.
  t.ok(endAt - headersAt >= 200, `body streamed after headers (${Math.round(endAt - headersAt)} ms)`)
  t.ok(endAt - began >= 295, `total >= 3 gaps (${Math.round(endAt - began)} ms)`)
})

t.test('/cut-body promises 100000 bytes, sends 1000, then cuts', async t => {
  const u = await start(t)
  const res = await request(`${u.url}/cut-body`, { dispatcher })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-length'], '100000')
  let got = 0
  await t.rejects(async () => {
    for await (const chunk of res.body) got += (chunk as Buffer).length
  })
  t.equal(got, 1000)
  await until(() => u.inflight === 0)
})

t.test('latency fault delays the headers (lower bound) and shows as inflight', async t => {
  const u = await start(t)
  u.set({ latencyMs: 150 })
  const began = performance.now()
  const pending = get(`${u.url}/`)
  await until(() => u.inflight === 1)
  const res = await pending
  const took = performance.now() - began
  t.equal(res.status, 200)
  t.ok(took >= 145, `took ${Math.round(took)} ms, want >= 150`)
  t.equal(u.inflight, 0)
})

t.test('jitter adds random() * jitterMs', async t => {
  const u = await start(t, { random: () => 0.5, fault: { latencyMs: 50, jitterMs: 200 } })
  const began = performance.now()
  await get(`${u.url}/`)
  const took = performance.now() - began
  t.ok(took >= 145, `took ${Math.round(took)} ms, want >= 50 + 0.5 * 200`)
})

t.test('errorRate 1 answers errorStatus (default 503)', async t => {
  const u = await start(t, { name: 'e' })
  u.set({ errorRate: 1 })
  const r1 = await get(`${u.url}/`)
  t.equal(r1.status, 503)
  t.equal(r1.headers['x-upstream-name'], 'e')
  u.set({ errorRate: 1, errorStatus: 502 })
  const r2 = await get(`${u.url}/bytes/10`)
  t.equal(r2.status, 502)
  t.equal(u.count, 2)
})

t.test('rates are drawn with the injected random', async t => {
  const u = await start(t, { random: sequence(0.4, 0.6), fault: { errorRate: 0.5 } })
  t.equal((await get(`${u.url}/`)).status, 503) // 0.4 < 0.5: hit
  t.equal((await get(`${u.url}/`)).status, 200) // 0.6: miss
})

t.test('resetRate 1: the socket dies without a response, count increments', async t => {
  const u = await start(t)
  u.set({ resetRate: 1 })
  const err = await request(`${u.url}/`, { dispatcher, method: 'POST', body: 'hello' })
    .then(() => undefined, (e: unknown) => e as NodeJS.ErrnoException)
  t.ok(err, 'request failed')
  t.ok(['ECONNRESET', 'UND_ERR_SOCKET'].includes(err?.code ?? ''), `socket error (${err?.code})`)
  t.equal(u.count, 1)
  t.equal(u.received.length, 1, 'the request was read before the reset')
  t.equal(u.received[0]?.bodyBytes, 5)
  await until(() => u.inflight === 0)
})

t.test('hangRate 1: pending until close(), which resolves quickly', async t => {
  const u = await startFaultUpstream({ fault: { hangRate: 1 } })
  t.teardown(() => u.close())
  let settled = false
  const outcome = request(`${u.url}/`, { dispatcher }).then(
    () => 'answered',
    () => 'failed'
  ).finally(() => { settled = true })
  await until(() => u.inflight === 1)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(settled, false, 'still pending after 200 ms')
  t.equal(u.count, 1)
  const began = performance.now()
  await u.close()
  const took = performance.now() - began
  t.ok(took < 3000, `close() took ${Math.round(took)} ms`)
  t.equal(await outcome, 'failed')
  t.equal(u.inflight, 0)
})

t.test('garbageRate 1: the client gets a parser error', async t => {
  const u = await start(t)
  u.set({ garbageRate: 1 })
  const err = await request(`${u.url}/`, { dispatcher }).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof errors.HTTPParserError, `parser error (${String(err)})`)
  t.equal(u.count, 1)
})

t.test('fault order: hang beats reset beats garbage beats error', async t => {
  const u = await start(t)
  u.set({ resetRate: 1, garbageRate: 1, errorRate: 1 })
  const e1 = await request(`${u.url}/`, { dispatcher }).then(() => undefined, (e: unknown) => e)
  t.notOk(e1 instanceof errors.HTTPParserError, 'reset, not garbage')
  t.ok(e1)
  u.set({ garbageRate: 1, errorRate: 1 })
  const e2 = await request(`${u.url}/`, { dispatcher }).then(() => undefined, (e: unknown) => e)
  t.ok(e2 instanceof errors.HTTPParserError, 'garbage, not error')
})

t.test('/_fault control API', async t => {
  const u = await start(t)
  const ctl = `${u.url}/_fault`
  t.same((await json(ctl)).body, { count: 0, inflight: 0 })

  const posted = await json(ctl, { method: 'POST', body: JSON.stringify({ errorRate: 1, errorStatus: 500 }) })
  t.equal(posted.status, 200)
  t.same(posted.body, { errorRate: 1, errorStatus: 500 })
  t.same(u.fault, { errorRate: 1, errorStatus: 500 })

  // Control requests are neither faulted nor counted.
  const got = await json(ctl)
  t.equal(got.status, 200)
  t.same(got.body, { errorRate: 1, errorStatus: 500, count: 0, inflight: 0 })
  t.equal((await get(`${u.url}/`)).status, 500)
  t.equal((await json(ctl)).body.count, 1)
  t.equal(u.count, 1)

  const put = await json(ctl, { method: 'PUT', body: JSON.stringify({ latencyMs: 10 }) })
  t.same(put.body, { latencyMs: 10 }, 'PUT replaces, not merges')

  const deleted = await json(ctl, { method: 'DELETE' })
  t.equal(deleted.status, 200)
  t.same(deleted.body, {})
  t.same(u.fault, {})
  t.equal((await get(`${u.url}/`)).status, 200)

  t.equal((await get(ctl, { method: 'POST', body: '{not json' })).status, 400)
  t.equal((await get(ctl, { method: 'POST', body: '{"latencyMS": 5}' })).status, 400, 'unknown key')
  t.equal((await get(ctl, { method: 'POST', body: '{"errorRate": 2}' })).status, 400, 'rate > 1')
  t.equal((await get(ctl, { method: 'POST', body: '[1]' })).status, 400, 'not an object')
  t.same(u.fault, {}, 'rejected bodies leave the fault alone')
  const patch = await get(ctl, { method: 'PATCH', body: '{}' })
  t.equal(patch.status, 405)
  t.equal(u.count, 2)
})

t.test('set() validates', async t => {
  const u = await start(t)
  t.throws(() => u.set({ errorRate: 1.5 }), RangeError)
  t.throws(() => u.set({ latencyMs: -1 }), RangeError)
  t.throws(() => u.set({ errorStatus: 99 }), RangeError)
  t.throws(() => u.set({ bogus: 1 } as never), RangeError)
  t.same(u.fault, {})
})

t.test('baseline: set() merges over it, set({}) and DELETE restore it', async t => {
  const u = await start(t, { baseline: { latencyMs: 120 } })
  t.same(u.fault, { latencyMs: 120 })
  u.set({ errorRate: 1 })
  t.same(u.fault, { latencyMs: 120, errorRate: 1 })
  u.set({})
  t.same(u.fault, { latencyMs: 120 })

  const posted = await json(`${u.url}/_fault`, { method: 'POST', body: '{"latencyMs": 0, "errorRate": 1}' })
  t.same(posted.body, { latencyMs: 0, errorRate: 1 }, 'an explicit key overrides the baseline')
  t.equal((await get(`${u.url}/`)).status, 503)

  const deleted = await json(`${u.url}/_fault`, { method: 'DELETE' })
  t.same(deleted.body, { latencyMs: 120 })
  const began = performance.now()
  const res = await get(`${u.url}/`)
  const took = performance.now() - began
  t.equal(res.status, 200)
  t.ok(took >= 115, `baseline latency back after DELETE (${Math.round(took)} ms)`)
})

t.test('received is capped, count is not; resetCounts clears both', async t => {
  const u = await start(t, { maxReceived: 3 })
  for (let i = 0; i < 5; i++) await get(`${u.url}/r${i}`)
  t.equal(u.count, 5)
  t.same(u.received.map(r => r.url), ['/r2', '/r3', '/r4'])
  u.resetCounts()
  t.equal(u.count, 0)
  t.equal(u.received.length, 0)
  await get(`${u.url}/again`)
  t.equal(u.count, 1)
  t.same(u.received.map(r => r.url), ['/again'])
})

t.test('close() is idempotent and stops listening', async t => {
  const u = await startFaultUpstream()
  await Promise.all([u.close(), u.close()])
  await u.close()
  await t.rejects(request(`${u.url}/`, { dispatcher }))
})

t.test('setDown: the port refuses connections, open ones die, then it comes back on the same port', async t => {
  const u = await start(t, { fault: { latencyMs: 5000 } })
  const slow = get(`${u.url}/echo`, { method: 'POST', body: 'charge' }).then(() => 'answered', (err: { code?: string }) => err.code ?? 'error')
  await until(() => u.inflight === 1)
  await u.setDown(true)
  t.equal(u.down, true)
  t.not(await slow, 'answered', `a request in flight when it went down is cut (${await slow})`)
  t.equal(u.count, 1, 'and was counted as received')
  t.equal(u.inflight, 0)
  const refused = await get(`${u.url}/echo`).then(() => 'answered', (err: { code?: string }) => err.code ?? 'error')
  t.equal(refused, 'ECONNREFUSED', 'a new connection is refused while down')
  t.equal(u.count, 1, 'a refused request never reaches it')
  u.set({})
  await u.setDown(false)
  t.equal(u.down, false)
  const back = await get(`${u.url}/echo`)
  t.equal(back.status, 200, 'serves again on the same port')
  t.equal(u.count, 2)
  await u.setDown(true)
  await u.close()
  t.equal(u.down, true, 'close() while down resolves')
})

t.test('demo upstreams start with their baselines and close', async t => {
  const demo = await startDemoUpstreams({
    ports: { 'pay-primary': 0, 'pay-backup': 0, 'product-primary': 0, 'product-backup': 0 },
    baseLatencyMs: { 'pay-primary': 60 }
  })
  t.teardown(() => demo.close())
  t.same(Object.keys(demo.upstreams).sort(), [...DEMO_NAMES].sort())
  for (const name of DEMO_NAMES) {
    const res = await get(`${demo.upstreams[name].url}/`)
    t.equal(res.headers['x-upstream-name'], name)
  }
  t.same(demo.upstreams['pay-primary'].fault, { latencyMs: 60 })
  t.same(demo.upstreams['pay-backup'].fault, { latencyMs: 30 })
  t.same(demo.upstreams['product-primary'].fault, { latencyMs: 5 })
  const del = await json(`${demo.upstreams['pay-primary'].url}/_fault`, { method: 'DELETE' })
  t.same(del.body, { latencyMs: 60 })
  await demo.close()
  await t.rejects(request(`${demo.upstreams['pay-backup'].url}/`, { dispatcher }))
})

t.test('demo upstreams: a port in use fails the start', async t => {
  const blocker = await start(t)
  await t.rejects(startDemoUpstreams({
    ports: { 'pay-primary': 0, 'pay-backup': blocker.port, 'product-primary': 0, 'product-backup': 0 }
  }), { code: 'EADDRINUSE' })
})
