/**
 * Bodies stream both ways without buffering, backpressure holds, and a
 * client that goes away aborts the upstream request.
 */
import t from 'tap'
import { Readable } from 'node:stream'
import { createHash } from 'node:crypto'
import { request } from 'undici'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'

const MB = 1024 * 1024

function bigBody (bytes: number, hash: ReturnType<typeof createHash>): Readable {
  const chunk = Buffer.alloc(256 * 1024, 7)
  let sent = 0
  return new Readable({
    read () {
      if (sent >= bytes) return this.push(null)
      const c = bytes - sent >= chunk.length ? chunk : chunk.subarray(0, bytes - sent)
      sent += c.length
      hash.update(c)
      this.push(c)
    }
  })
}

t.test('a 256 MB upload streams through without growing memory', async t => {
  const up = await upstream(t, { name: 'sink' })
  // A chunked upload (no Content-Length), over the default 10mb maxBodySize: the route raises it.
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'sink', url: up.url }], '    limits: { maxBodySize: 300mb }\n')))
  const size = 256 * MB
  const hash = createHash('sha256')
  global.gc?.()
  const before = process.memoryUsage().rss
  let peak = before
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 20)
  const res = await request(`${url}/upload`, { method: 'POST', body: bigBody(size, hash), headers: { 'content-type': 'application/octet-stream' } })
  clearInterval(sampler)
  const echo = await res.body.json() as { bodyBytes: number, bodySha256: string }
  t.equal(res.statusCode, 200)
  t.equal(echo.bodyBytes, size, 'every byte arrived')
  t.equal(echo.bodySha256, hash.digest('hex'), 'unchanged')
  // Gateway, upstream and client share this process: buffering the body
  // anywhere would add >= 256 MB.
  t.ok(peak - before < 96 * MB, `rss grew ${Math.round((peak - before) / MB)} MB (< 96 MB)`)
})

t.test('a 256 MB download streams through', async t => {
  const up = await upstream(t, { name: 'source' })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'source', url: up.url }])))
  const size = 256 * MB
  const before = process.memoryUsage().rss
  let peak = before
  const res = await request(`${url}/bytes/${size}`)
  t.equal(res.headers['content-length'], String(size), 'content-length passed through')
  let got = 0
  for await (const chunk of res.body) {
    got += (chunk as Buffer).length
    if ((got & (16 * MB - 1)) < 65536) peak = Math.max(peak, process.memoryUsage().rss)
  }
  t.equal(got, size)
  t.ok(peak - before < 96 * MB, `rss grew ${Math.round((peak - before) / MB)} MB (< 96 MB)`)
})

t.test('a slow client holds back the upstream (backpressure), then gets everything', async t => {
  const up = await upstream(t, { name: 'source' })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'source', url: up.url }])))
  const size = 64 * MB
  const res = await request(`${url}/bytes/${size}`, { highWaterMark: 64 * 1024 })
  // Read nothing for a while: the gateway must pause, not buffer 64 MB.
  const before = process.memoryUsage().rss
  await new Promise(resolve => setTimeout(resolve, 300))
  t.ok(process.memoryUsage().rss - before < 48 * MB, 'paused instead of buffering')
  let got = 0
  for await (const chunk of res.body) got += (chunk as Buffer).length
  t.equal(got, size)
})

t.test('slow response body chunks arrive as they are sent', async t => {
  const up = await upstream(t, { name: 'drip' })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'drip', url: up.url }])))
  const res = await request(`${url}/slow-body?chunks=3&gapMs=150`)
  const arrivals: number[] = []
  const start = Date.now()
  for await (const chunk of res.body) arrivals.push(Date.now() - start) && void chunk
  t.ok(arrivals.length >= 2, `chunks were forwarded separately (${arrivals.length})`)
  t.ok((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0) >= 150, 'not buffered until the end')
})

t.test('body idle timeout cuts a stalled response', async t => {
  const up = await upstream(t, { name: 'drip' })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'drip', url: up.url }], '    timeouts: { bodyIdle: 100ms }\n')))
  const res = await request(`${url}/slow-body?chunks=3&gapMs=1000`)
  t.equal(res.statusCode, 200)
  await t.rejects(res.body.text(), 'stalled body is cut')
})

t.test('client disconnect aborts the upstream request', async t => {
  const up = await upstream(t, { name: 'hang', fault: { hangRate: 1 } })
  const { url, gw } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'hang', url: up.url }])))
  const ac = new AbortController()
  const pending = request(`${url}/x`, { signal: ac.signal })
  await waitFor(() => up.inflight === 1)
  const stats = [...gw.stats.all()].find(s => s.upstream === 'hang')
  t.equal(stats?.inflight.size, 1, 'gateway sees one attempt in flight')
  ac.abort()
  await t.rejects(pending)
  await waitFor(() => up.inflight === 0)
  t.equal(up.inflight, 0, 'upstream connection closed')
  await waitFor(() => stats?.inflight.size === 0)
  t.equal(stats?.view().total.aborted, 1, 'recorded as aborted, not as an upstream failure')
  t.equal(stats?.view().total.reset, 0)
})

async function waitFor (cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}
