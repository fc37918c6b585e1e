/**
 * `npm run bench:overload`: offered load at 3× what the upstream can
 * serve, payments (priority critical) mixed with low-priority traffic, on
 * one shared upstream, through the built gateway (a child process pinned
 * to CPU 0; the origin and the load generator on CPU 1). Two modes,
 * interleaved: `protected` (overload gate sized to the upstream's capacity)
 * and `unprotected` (the same routes without it). Prints per mode the
 * payment success rate and latency, what happened to the low-priority
 * traffic, and the gateway's memory at the start and end of the load.
 *
 * The origin models a service with SLOTS slots of SERVICE_MS each
 * (cli-gateway.ts); requests beyond the slots queue in it.
 * Env: OVERLOAD_SECONDS (10), OVERLOAD_ROUNDS (2).
 */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { runOpenLoop, type RequestResult } from '../scripts/lib/open-loop.js'
import { percentile } from '../scripts/lib/s1-scenario.js'
import { freePort } from './proc.js'
import { startSlotOrigin, startCliGateway, stopChild, rssMb, policyHead } from './cli-gateway.js'

const SLOTS = 8
const SERVICE_MS = 40
const CAPACITY = SLOTS * 1000 / SERVICE_MS // req/s
const SECONDS = Number(process.env.OVERLOAD_SECONDS ?? 10)
const ROUNDS = Number(process.env.OVERLOAD_ROUNDS ?? 2)
const PAY_SHARE = 0.3 // of the capacity
const OFFERED = 3 * CAPACITY

function policy (port: number, adminPort: number, originPort: number, protect: boolean): string {
  return `${policyHead(`overload-${protect ? 'protected' : 'unprotected'}`, port, adminPort)}${protect ? `overload: { maxConcurrent: ${SLOTS} }\n` : ''}routes:
  - name: payments
    match: { pathPrefix: /pay }
${protect ? '    priority: critical\n' : ''}    timeouts: { responseHeaders: 30s, total: 60s }
    upstreams:
      - { name: origin, url: "http://127.0.0.1:${originPort}" }
  - name: feed
    match: { pathPrefix: /feed }
${protect ? '    priority: low\n' : ''}    timeouts: { responseHeaders: 30s, total: 60s }
    upstreams:
      - { name: origin, url: "http://127.0.0.1:${originPort}" }
`
}

interface ModeResult { pay: Summary, feed: Summary, rssStart: number, rssEnd: number, shedSample: string }
interface Summary { sent: number, ok: number, shed503: number, other: number, p50: number | null, p99: number | null }

function summarize (rs: readonly RequestResult[]): Summary {
  const ok = rs.filter(r => r.status >= 200 && r.status < 300)
  const lat = ok.map(r => r.latencyMs).sort((a, b) => a - b)
  return { sent: rs.length, ok: ok.length, shed503: rs.filter(r => r.status === 503).length, other: rs.filter(r => !(r.status >= 200 && r.status < 300) && r.status !== 503).length, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) }
}

async function runMode (dir: string, originPort: number, protect: boolean): Promise<ModeResult> {
  const port = await freePort()
  const adminPort = await freePort()
  const file = join(dir, `${protect ? 'p' : 'u'}.yaml`)
  await writeFile(file, policy(port, adminPort, originPort, protect))
  const gw = await startCliGateway(file)
  try {
    const url = `http://127.0.0.1:${port}`
    const startAt = performance.now() + 200
    const ms = SECONDS * 1000
    let rssStart = 0
    const sampler = setTimeout(() => { rssMb(gw.pid as number).then(v => { rssStart = v }, () => {}) }, 2000)
    // One low-priority request in the middle of the load: what a shed client sees.
    let shedSample = '-'
    const prober = setTimeout(() => {
      request(`${url}/feed/probe`).then(async p => {
        await p.body.dump()
        shedSample = `${p.statusCode} ${String(p.headers['x-gateway-error'] ?? '-')} retry-after ${String(p.headers['retry-after'] ?? '-')}`
      }, () => {})
    }, 200 + ms / 2)
    const [pay, feed] = await Promise.all([
      runOpenLoop({ url, ratePerSec: OFFERED * PAY_SHARE / 3, durationMs: ms, startAt, path: '/pay/checkout', method: 'POST', connections: 512, timeoutMs: 60_000 }),
      runOpenLoop({ url, ratePerSec: OFFERED - OFFERED * PAY_SHARE / 3, durationMs: ms, startAt, path: '/feed/items', method: 'GET', body: null, connections: 1024, timeoutMs: 60_000 })
    ])
    clearTimeout(sampler)
    clearTimeout(prober)
    const rssEnd = await rssMb(gw.pid as number)
    return { pay: summarize(pay), feed: summarize(feed), rssStart, rssEnd, shedSample }
  } finally {
    await stopChild(gw)
  }
}

const fmt = (v: number | null): string => v === null ? '-' : `${v.toFixed(1)} ms`
const pct = (a: number, b: number): string => b === 0 ? '-' : `${(100 * a / b).toFixed(2)} %`

const dir = await mkdtemp(join(tmpdir(), 'overload-bench-'))
const origin = await startSlotOrigin(SLOTS, SERVICE_MS)
console.log(`upstream: ${SLOTS} slots × ${SERVICE_MS} ms = ${CAPACITY} req/s; offered ${OFFERED} req/s for ${SECONDS} s (payments ${OFFERED * PAY_SHARE / 3} req/s critical, the rest low priority); ${ROUNDS} round(s), modes interleaved`)
console.log('mode         round  pay ok          pay p50    pay p99     low ok   low 503  other  gateway RSS start→end (MB)')
try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const protect of round % 2 === 1 ? [true, false] : [false, true]) {
      const r = await runMode(dir, origin.port, protect)
      console.log(`${(protect ? 'protected' : 'unprotected').padEnd(12)} ${String(round).padStart(5)}  ${pct(r.pay.ok, r.pay.sent).padStart(8)} of ${String(r.pay.sent).padEnd(5)} ${fmt(r.pay.p50).padStart(9)} ${fmt(r.pay.p99).padStart(10)}  ${String(r.feed.ok).padStart(7)}  ${String(r.feed.shed503).padStart(7)}  ${String(r.pay.other + r.feed.other).padStart(5)}  ${r.rssStart}→${r.rssEnd}   (a low-priority request mid-load: ${r.shedSample})`)
    }
  }
} finally {
  await origin.close()
}
