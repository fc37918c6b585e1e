/**
 * Hedged reads over real sockets: a primary with a slow tail; hedging after a
 * fixed delay (and after the observed p95) cuts the client p99, the loser is
 * aborted, and the upstreams see exactly the hedges the gateway counted.
 * Never for POST.
 */
import t from 'tap'
import { createServer, type Server } from 'node:http'
import { request } from 'undici'
import { startGateway, policyYaml, upstream } from './helpers/harness.js'

/** Every 10th request answers after `slowMs`, the rest at once. */
async function slowTail (t: { teardown (fn: () => unknown): void }, slowMs: number): Promise<{ url: string, received: () => number, aborted: () => number }> {
  let n = 0
  let aborted = 0
  const srv: Server = createServer((req, res) => {
    const slow = ++n % 10 === 0
    req.resume()
    req.on('end', () => {
      const send = (): void => { res.end('tail') }
      if (!slow) return send()
      const timer = setTimeout(send, slowMs)
      res.on('close', () => { if (!res.writableFinished) { aborted++; clearTimeout(timer) } })
    })
  })
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { srv.closeAllConnections(); await new Promise(resolve => srv.close(resolve)) })
  return { url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, received: () => n, aborted: () => aborted }
}

function p99 (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.ceil(0.99 * s.length) - 1] as number
}

async function measure (url: string, n: number, method: 'GET' | 'POST' = 'GET'): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const started = performance.now()
    const res = await request(`${url}/item`, { method, body: method === 'POST' ? '{}' : undefined })
    await res.body.text()
    out.push(performance.now() - started)
  }
  return out
}

const pool = (a: string, b: string): string => `    upstreams:
      - { name: a, url: "${a}" }
      - { name: b, url: "${b}", role: backup }
`

t.test('hedging after 50 ms cuts the p99 of a slow-tailed primary; hedges are counted and losers aborted', async t => {
  const tailA = await slowTail(t, 600)
  const fastB = await upstream(t, { name: 'b' })
  const plain = await startGateway(t, policyYaml(`  - name: cat
    match: { pathPrefix: / }
${pool(tailA.url, fastB.url)}`))
  const without = p99(await measure(plain.url, 100))

  const tailC = await slowTail(t, 600)
  const fastD = await upstream(t, { name: 'b' })
  const hedged = await startGateway(t, policyYaml(`  - name: cat
    match: { pathPrefix: / }
${pool(tailC.url, fastD.url)}    hedge: { delay: 50ms }
    retry: { budget: { ratio: 20%, minPerSecond: 5 } }
`))
  const withHedge = p99(await measure(hedged.url, 100))
  t.ok(without >= 550, `without hedging p99 = ${Math.round(without)} ms (the tail)`)
  t.ok(withHedge < without / 2, `with hedging p99 = ${Math.round(withHedge)} ms`)
  const d = (hedged.gw.status() as any).routes[0].delivery
  t.equal(d.hedges, 10, 'one hedge per slow request')
  t.equal(d.hedgeWins, 10, 'and each won')
  t.equal(tailC.received() + fastD.count, 100 + d.hedges, 'the upstreams saw exactly the hedges counted')
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(tailC.aborted(), 10, 'every losing slow attempt was aborted')
})

t.test('hedging on the observed p90 (floored by minDelay); never for POST', async t => {
  const tail = await slowTail(t, 400)
  const fast = await upstream(t, { name: 'b' })
  const { url, gw } = await startGateway(t, policyYaml(`  - name: cat
    match: { pathPrefix: / }
${pool(tail.url, fast.url)}    hedge: { delay: p90 }
    retry: { budget: { ratio: 50%, minPerSecond: 10 } }
`), { controlTickMs: 20 })
  await measure(url, 40) // builds the latency window
  await new Promise(resolve => setTimeout(resolve, 200))
  const delay = (gw.status() as any).routes[0].delivery.hedgeDelayMs
  t.ok(delay > 0 && delay < 400, `hedge delay from the observed p90: ${delay} ms`)
  const posts = await measure(url, 20, 'POST')
  t.ok(Math.max(...posts) >= 380, 'POSTs wait for the slow answer: not hedged')
  t.equal(fast.received.filter(r => r.method === 'POST').length, 0, 'no POST ever reached the second upstream')
})
