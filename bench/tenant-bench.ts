/**
 * `npm run bench:tenants`: does one tenant's flood raise the other tenants'
 * p99? The built gateway (CPU 0) fronts a shared origin (SHARED_SLOTS × SERVICE_MS)
 * and a live-stream cluster of its own (POOL_SLOTS × SERVICE_MS). Other
 * tenants send OTHERS_RATE req/s, open loop, timed from each request's due
 * moment. Three modes, interleaved per round, each on a fresh gateway:
 *
 * - `quiet`: the bulkhead policy, no flood (the baseline);
 * - `bulkhead`: the same policy while tenant live-stream floods at
 *   FLOOD_RATE req/s (its pool: own cluster, 8 in flight, no queue);
 * - `no-bulkhead`: the same flood without the bulkheads block, so the
 *   flood shares the route's upstream and gate with everyone.
 *
 * The verdict is the median over rounds of p99(bulkhead) / p99(quiet) of
 * the other tenants' requests (target ≤ 1.10). The flood runs in a child
 * process (this file with --flood), so its sending does not share the
 * measuring event loop. The first second of each run is warm-up and not
 * counted. Env: TENANT_SECONDS (10), TENANT_ROUNDS (3), TENANT_FLOOD_RATE
 * (3 × the shared origin's capacity).
 */
import { spawn } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { runOpenLoop, type RequestResult } from '../scripts/lib/open-loop.js'
import { percentile } from '../scripts/lib/s1-scenario.js'
import { median } from './report.js'
import { freePort, detectPinning, pinSelf, LOAD_CPU } from './proc.js'
import { startSlotOrigin, startCliGateway, stopChild, rssMb, policyHead } from './cli-gateway.js'

const SERVICE_MS = 50
const SHARED_SLOTS = 16
const POOL_SLOTS = 8
const SHARED_CAPACITY = SHARED_SLOTS * 1000 / SERVICE_MS
const OTHERS_RATE = 150
const OTHER_TENANTS = ['m-101', 'm-102', 'm-103', 'm-104', 'm-105']
const SECONDS = Number(process.env.TENANT_SECONDS ?? 10)
const ROUNDS = Number(process.env.TENANT_ROUNDS ?? 3)
const FLOOD_RATE = Number(process.env.TENANT_FLOOD_RATE ?? 3 * SHARED_CAPACITY)
const WARMUP_MS = 1000
const TARGET = 1.1

type Mode = 'quiet' | 'bulkhead' | 'no-bulkhead'

interface FloodSummary { sent: number, ok: number, s503: number, other: number }

if (process.argv[2] === '--flood') {
  // Child: say it is loaded, flood from the wall-clock moment it is sent on
  // stdin, then print what happened as one JSON line.
  const [url, rate, ms] = process.argv.slice(3).map((v, i) => i === 0 ? v : Number(v)) as [string, number, number]
  process.stdout.write('ready\n')
  const startWall = await new Promise<number>(resolve => process.stdin.once('data', (c: Buffer) => resolve(Number(c.toString().trim()))))
  const rs = await runOpenLoop({ url, ratePerSec: rate, durationMs: ms, startAt: performance.now() + (startWall - Date.now()), path: '/orders/new', headers: () => ({ 'x-tenant': 'live-stream' }), connections: 2048, timeoutMs: 60_000 })
  const s: FloodSummary = { sent: rs.length, ok: rs.filter(r => r.status === 200).length, s503: rs.filter(r => r.status === 503).length, other: rs.filter(r => r.status !== 200 && r.status !== 503).length }
  process.stdout.write(JSON.stringify(s) + '\n')
  process.exit(0)
}

/** The flood child, loaded and waiting for its start time. */
async function floodChild (url: string, ms: number): Promise<{ start: (startWall: number) => Promise<FloodSummary> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/tenant-bench.ts', '--flood', url, String(FLOOD_RATE), String(ms)], { stdio: ['pipe', 'pipe', 'inherit'] })
  let out = ''
  const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
      if (out.startsWith('ready\n')) resolve()
    })
    exited.then(code => reject(new Error(`flood exited ${String(code)} before it was ready`)), () => {})
  })
  return {
    start: async startWall => {
      child.stdin.end(`${startWall}\n`)
      const code = await exited
      if (code !== 0) throw new Error(`flood exited ${String(code)}`)
      return JSON.parse(out.slice('ready\n'.length)) as FloodSummary
    }
  }
}

function policy (port: number, adminPort: number, sharedPort: number, livePort: number, bulkheads: boolean): string {
  return `${policyHead(`tenants-${bulkheads ? 'bulkhead' : 'none'}`, port, adminPort)}routes:
  - name: orders
    match: { pathPrefix: /orders }
    timeouts: { responseHeaders: 30s, total: 60s }
    admission: { maxConcurrent: ${SHARED_SLOTS * 4}, queue: ${SHARED_SLOTS * 4}, queueTimeout: 1s }
${bulkheads
? `    bulkheads:
      header: X-Tenant
      pools:
        - name: live
          tenants: [live-stream]
          upstreams:
            - { name: live-cluster, url: "http://127.0.0.1:${livePort}" }
          admission: { maxConcurrent: ${POOL_SLOTS}, queue: 0 }
`
: ''}    upstreams:
      - { name: shared, url: "http://127.0.0.1:${sharedPort}" }
`
}

interface ModeResult { sent: number, ok: number, p50: number | null, p99: number | null, flood: FloodSummary | null, sharedServed: number, rssStart: number, rssEnd: number }

async function runMode (dir: string, shared: Awaited<ReturnType<typeof startSlotOrigin>>, live: Awaited<ReturnType<typeof startSlotOrigin>>, mode: Mode): Promise<ModeResult> {
  const port = await freePort()
  const adminPort = await freePort()
  const file = join(dir, `${mode}.yaml`)
  await writeFile(file, policy(port, adminPort, shared.port, live.port, mode !== 'no-bulkhead'))
  const gw = await startCliGateway(file)
  try {
    const url = `http://127.0.0.1:${port}`
    const ms = WARMUP_MS + SECONDS * 1000
    const child = mode === 'quiet' ? null : await floodChild(url, ms)
    const startWall = Date.now() + 500
    const startAt = performance.now() + 500
    const flood = child?.start(startWall) ?? null
    let rssStart = 0
    const sampler = setTimeout(() => { rssMb(gw.pid as number).then(v => { rssStart = v }, () => {}) }, 500 + WARMUP_MS)
    const servedBefore = shared.served()
    const others = await runOpenLoop({ url, ratePerSec: OTHERS_RATE, durationMs: ms, startAt, path: '/orders/new', headers: seq => ({ 'x-tenant': OTHER_TENANTS[seq % OTHER_TENANTS.length] as string }), connections: 1024, timeoutMs: 60_000 })
    const floodResult = flood === null ? null : await flood
    clearTimeout(sampler)
    const rssEnd = await rssMb(gw.pid as number)
    const counted = others.filter((r: RequestResult) => r.intendedMs >= WARMUP_MS)
    const ok = counted.filter(r => r.status === 200)
    const lat = ok.map(r => r.latencyMs).sort((a, b) => a - b)
    return { sent: counted.length, ok: ok.length, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), flood: floodResult, sharedServed: shared.served() - servedBefore, rssStart, rssEnd }
  } finally {
    await stopChild(gw)
  }
}

const fmt = (v: number | null): string => v === null ? '-' : `${v.toFixed(1)} ms`
const pct = (a: number, b: number): string => b === 0 ? '-' : `${(100 * a / b).toFixed(2)} %`

pinSelf(detectPinning(), LOAD_CPU)
const dir = await mkdtemp(join(tmpdir(), 'tenant-bench-'))
const shared = await startSlotOrigin(SHARED_SLOTS, SERVICE_MS)
const live = await startSlotOrigin(POOL_SLOTS, SERVICE_MS)
console.log(`shared origin ${SHARED_SLOTS} slots × ${SERVICE_MS} ms = ${SHARED_CAPACITY} req/s; live-stream cluster ${POOL_SLOTS} × ${SERVICE_MS} ms; other tenants ${OTHERS_RATE} req/s (${OTHER_TENANTS.length} tenants); flood ${FLOOD_RATE} req/s from tenant live-stream; ${SECONDS} s measured after ${WARMUP_MS / 1000} s warm-up; ${ROUNDS} round(s), modes interleaved`)
console.log('mode          round  others ok          p50        p99       flood ok  flood 503  flood other  shared served  gateway RSS (MB)')
const p99s: Record<Mode, number[]> = { quiet: [], bulkhead: [], 'no-bulkhead': [] }
const ratios: number[] = []
try {
  for (let round = 1; round <= ROUNDS; round++) {
    const order: Mode[] = round % 2 === 1 ? ['quiet', 'bulkhead', 'no-bulkhead'] : ['no-bulkhead', 'bulkhead', 'quiet']
    const got: Partial<Record<Mode, ModeResult>> = {}
    for (const mode of order) {
      const r = await runMode(dir, shared, live, mode)
      got[mode] = r
      if (r.p99 !== null) p99s[mode].push(r.p99)
      const f = r.flood
      console.log(`${mode.padEnd(12)} ${String(round).padStart(6)}  ${pct(r.ok, r.sent).padStart(8)} of ${String(r.sent).padEnd(5)} ${fmt(r.p50).padStart(9)} ${fmt(r.p99).padStart(10)}  ${String(f?.ok ?? '-').padStart(8)}  ${String(f?.s503 ?? '-').padStart(9)}  ${String(f?.other ?? '-').padStart(11)}  ${String(r.sharedServed).padStart(13)}  ${r.rssStart}→${r.rssEnd}`)
    }
    const q = got.quiet?.p99 ?? null
    const b = got.bulkhead?.p99 ?? null
    if (q !== null && b !== null) ratios.push(b / q)
  }
} finally {
  await shared.close()
  await live.close()
}
const m = median(ratios)
console.log(`\nother tenants' p99, median over rounds: quiet ${fmt(median(p99s.quiet))}, bulkhead ${fmt(median(p99s.bulkhead))}, no-bulkhead ${fmt(median(p99s['no-bulkhead']))}`)
console.log(`p99 bulkhead / quiet per round: ${ratios.map(r => r.toFixed(3)).join(' ')}; median ${m.toFixed(3)} (target ≤ ${TARGET.toFixed(2)}: ${m <= TARGET ? 'PASS' : 'MISS'})`)
