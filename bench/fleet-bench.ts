/**
 * Fleet benchmark (npm run bench:fleet), one run, interleaved rounds:
 * 1. keyed POST (a fresh Idempotency-Key per request) at a fixed 500 req/s:
 *    added p50/p99 over direct-to-origin, with the memory store and with a
 *    real redis-server on loopback;
 * 2. plain GET throughput (closed loop, 64 connections) with --workers 1
 *    and --workers 2.
 * Every server is its own process; on a 2-core machine the load generator
 * shares the cores with them, so the workers figure says what this machine
 * allows, not what more cores would give.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { createRequire } from 'node:module'
import { median } from './report.js'

interface Result { latency: { p50: number, p99: number }, requests: { average: number }, errors: number, non2xx: number }
// autocannon ships no types; its programmatic API returns a promise of the result.
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: object) => Promise<Result>

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2)
const SECONDS = Number(process.env.BENCH_DURATION ?? 5)
const children: ChildProcess[] = []
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
}

async function start (cmd: string, args: string[], ready: RegExp): Promise<{ proc: ChildProcess, port: number }> {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GATEWAY_LOG_LEVEL: 'error' } })
  children.push(proc)
  let out = ''
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start: ${out.slice(-500)}`)), 60_000)
    const on = (c: Buffer): void => {
      out += c.toString()
      const m = ready.exec(out)
      if (m !== null) { clearTimeout(timer); resolve({ proc, port: Number(m[1]) }) }
    }
    proc.stdout?.on('data', on)
    proc.stderr?.on('data', on)
  })
}

async function stop (proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return
  await new Promise(resolve => { proc.once('exit', resolve); proc.kill('SIGTERM') })
}

async function gateway (originPort: number, store: string, workers: number): Promise<{ proc: ChildProcess, port: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-bench-'))
  const file = join(dir, 'policy.yaml')
  await writeFile(file, `version: fleet-bench
listeners: [{ name: public, host: 127.0.0.1, port: 0 }]
${store}
routes:
  - name: pay
    match: { pathPrefix: / }
    upstreams: [{ name: origin, url: "http://127.0.0.1:${originPort}" }]
    idempotency: { ttl: 10m }
`)
  return await start(process.execPath, ['dist/gateway/cli/main.js', 'run', '--policy', file, '--no-watch', '--workers', String(workers)], /listening on http:\/\/127\.0\.0\.1:(\d+)/)
}

let keyN = 0
async function keyed (port: number): Promise<{ p50: number, p99: number, errors: number, non2xx: number }> {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/pay/charge`,
    connections: 10,
    duration: SECONDS,
    overallRate: 500,
    requests: [{ method: 'POST', body: '{"amount":1}', setupRequest: (req: any) => ({ ...req, headers: { ...req.headers, 'content-type': 'application/json', 'idempotency-key': `k-${process.pid}-${++keyN}` } }) }]
  })
  return { p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx }
}

async function throughput (port: number): Promise<number> {
  const r = await autocannon({ url: `http://127.0.0.1:${port}/pay/item`, connections: 64, duration: SECONDS })
  return r.errors + r.non2xx > 0 ? Number.NaN : r.requests.average // a failed run is left out of the median
}


const origin = await start(process.execPath, ['--import', 'tsx', 'bench/origin.ts', '0'], /READY (\d+)/)
const redisPort = await freePort()
const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
children.push(redis)
await new Promise(resolve => setTimeout(resolve, 500))

const lat: Record<string, Array<{ p50: number, p99: number }>> = { direct: [], memory: [], redis: [] }
let failures = 0
const mem = await gateway(origin.port, '', 1)
const red = await gateway(origin.port, `store:\n  redis: { url: "redis://127.0.0.1:${redisPort}" }`, 1)
for (let round = 0; round < ROUNDS; round++) {
  const order: Array<[string, number]> = [['direct', origin.port], ['memory', mem.port], ['redis', red.port]]
  if (round % 2 === 1) order.reverse()
  for (const [name, port] of order) {
    const m = await keyed(port)
    failures += m.errors + m.non2xx
    lat[name]!.push(m)
    process.stderr.write(`round ${round + 1} keyed POST ${name}: p50 ${m.p50} ms p99 ${m.p99} ms (errors ${m.errors}, non-2xx ${m.non2xx})\n`)
  }
}
await stop(mem.proc)
await stop(red.proc)

const rps: Record<string, number[]> = { w1: [], w2: [] }
const w1 = await gateway(origin.port, '', 1)
const w2 = await gateway(origin.port, '', 2)
for (let round = 0; round < ROUNDS; round++) {
  const order: Array<[string, number]> = round % 2 === 0 ? [['w1', w1.port], ['w2', w2.port]] : [['w2', w2.port], ['w1', w1.port]]
  for (const [name, port] of order) {
    const v = await throughput(port)
    if (Number.isNaN(v)) failures++
    rps[name]!.push(v)
    process.stderr.write(`round ${round + 1} GET ${name}: ${Math.round(v)} req/s\n`)
  }
}
await stop(w1.proc)
await stop(w2.proc)

const added = (name: string, q: 'p50' | 'p99'): string => {
  const d = lat[name]!.map((m, i) => m[q] - (lat.direct![i] as { p50: number, p99: number })[q])
  return `${median(d) >= 0 ? '+' : ''}${median(d).toFixed(2)} ms`
}
console.log(`\nKeyed POST at 500 req/s, ${ROUNDS} interleaved rounds × ${SECONDS} s (autocannon latency has 1 ms resolution)`)
console.log(`  direct          p50 ${median(lat.direct!.map(m => m.p50))} ms   p99 ${median(lat.direct!.map(m => m.p99))} ms`)
console.log(`  memory store    added p50 ${added('memory', 'p50')}   added p99 ${added('memory', 'p99')}`)
console.log(`  redis store     added p50 ${added('redis', 'p50')}   added p99 ${added('redis', 'p99')}   (one claim + one complete round trip to a loopback Redis)`)
console.log(`\nPlain GET, closed loop, 64 connections, ${ROUNDS} interleaved rounds × ${SECONDS} s`)
console.log(`  --workers 1   ${Math.round(median(rps.w1!))} req/s`)
console.log(`  --workers 2   ${Math.round(median(rps.w2!))} req/s   (${(median(rps.w2!) / median(rps.w1!)).toFixed(2)}×; 2 cores shared with the origin and autocannon)`)
console.log(failures === 0 ? '\nno errors' : `\n${failures} runs had errors or non-2xx`)
for (const c of children) c.kill('SIGKILL')
process.exit(failures === 0 ? 0 : 1)
