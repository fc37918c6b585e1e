/**
 * `npm run bench:protocols`: what TLS and HTTP/2 cost beside plain
 * HTTP/1.1, on one built gateway (CPU 0) with three listeners in front of
 * one origin (in this process, CPU 1): plain HTTP/1.1, TLS (ALPN h2 and
 * http/1.1) and h2c. The load is h2load (Debian nghttp2-client), one client
 * for every protocol, pinned to CPU 1. Per round, interleaved:
 *
 * - req/s on kept-alive connections: HTTP/1.1, HTTP/1.1 over TLS, h2 over
 *   TLS and h2c, with the same requests in flight (PROTO_CONNECTIONS; h2
 *   puts H2_STREAMS on each connection), and the gateway's CPU per request
 *   read from /proc;
 * - the TLS handshake: a new connection per request (`Connection: close`),
 *   plain and TLS, from this process; the handshake's cost is the
 *   gateway's CPU per TLS connection minus that per plain connection.
 *
 * Ratios are medians of same-round ratios. Env: PROTO_SECONDS (5),
 * PROTO_ROUNDS (3), PROTO_CONNECTIONS (50), H2_STREAMS (10).
 */
import { execFile, spawnSync } from 'node:child_process'
import { createServer } from 'node:http'
import { connect as tlsConnect } from 'node:tls'
import { connect as netConnect, type Socket } from 'node:net'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { median } from './report.js'
import { freePort, detectPinning, pinSelf, LOAD_CPU } from './proc.js'
import { startCliGateway, stopChild } from './cli-gateway.js'
import { selfSignedLocalhost } from '../scripts/lib/self-signed.js'

const SECONDS = Number(process.env.PROTO_SECONDS ?? 5)
const ROUNDS = Number(process.env.PROTO_ROUNDS ?? 3)
const CONNECTIONS = Number(process.env.PROTO_CONNECTIONS ?? 50)
const STREAMS = Number(process.env.H2_STREAMS ?? 10)
const H2_CONNECTIONS = Math.max(1, Math.round(CONNECTIONS / STREAMS))
const HANDSHAKE_WORKERS = 16
const BODY = Buffer.from(`${'origin-ok '.repeat(9)}origin-ok\n`)

type Target = 'http/1.1' | 'http/1.1+tls' | 'h2+tls' | 'h2c'
interface Run { rps: number, failed: number, cpuUsPerReq: number }

if (spawnSync('h2load', ['--version']).status !== 0) {
  process.stderr.write('bench:protocols needs h2load: apt-get install -y nghttp2-client\n')
  process.exit(2)
}
const pin = detectPinning()
pinSelf(pin, LOAD_CPU)

const origin = createServer((req, res) => {
  req.resume()
  req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length }).end(BODY) })
})
origin.keepAliveTimeout = 60_000
await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
const originPort = (origin.address() as { port: number }).port

const dir = await mkdtemp(join(tmpdir(), 'proto-bench-'))
const cert = selfSignedLocalhost(dir)
const [plainPort, tlsPort, h2cPort, adminPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
const file = join(dir, 'policy.yaml')
await writeFile(file, `version: protocols
listeners:
  - { name: plain, host: 127.0.0.1, port: ${plainPort}, limits: { maxConnections: 10000 } }
  - name: tls
    host: 127.0.0.1
    port: ${tlsPort}
    limits: { maxConnections: 10000 }
    tls: { certificates: [{ cert: ${JSON.stringify(cert.certFile)}, key: ${JSON.stringify(cert.keyFile)} }] }
  - { name: h2c, host: 127.0.0.1, port: ${h2cPort}, http2: true, limits: { maxConnections: 10000 } }
admin: { host: 127.0.0.1, port: ${adminPort} }
routes:
  - name: api
    match: { pathPrefix: / }
    upstreams:
      - { name: origin, url: "http://127.0.0.1:${originPort}" }
`)
const gw = await startCliGateway(file)
const pid = gw.pid as number

/** utime + stime of the gateway, in µs. */
async function cpuUs (): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) * 1e6 / 100
}

async function h2load (target: Target): Promise<Run> {
  const url = target === 'http/1.1' ? `http://127.0.0.1:${plainPort}/x` : target === 'h2c' ? `http://127.0.0.1:${h2cPort}/x` : `https://127.0.0.1:${tlsPort}/x`
  // The same requests in flight for every protocol: h2 puts STREAMS of them on each connection.
  const h1 = target.startsWith('http/1.1')
  const args = ['-D', String(SECONDS), '-c', String(h1 ? CONNECTIONS : H2_CONNECTIONS), '-t', '1', ...(h1 ? ['--h1'] : ['-m', String(STREAMS)]), url]
  const cmd = pin.enabled ? [pin.taskset, '-c', String(LOAD_CPU), 'h2load', ...args] : ['h2load', ...args]
  const before = await cpuUs()
  const out = await new Promise<string>((resolve, reject) => {
    execFile(cmd[0] as string, cmd.slice(1), { maxBuffer: 4 << 20 }, (err, stdout) => { if (err !== null) reject(err); else resolve(stdout) })
  })
  const cpu = await cpuUs() - before
  const rps = Number(/finished in [\d.]+s, ([\d.]+) req\/s/.exec(out)?.[1] ?? NaN)
  const m = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out)
  const done = Number(m?.[2] ?? 0)
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out)
  const failed = Number(m?.[4] ?? 0) + Number(m?.[5] ?? 0) + Number(codes?.[3] ?? 0) + Number(codes?.[4] ?? 0)
  return { rps, failed, cpuUsPerReq: done === 0 ? NaN : cpu / done }
}

/** New connection per request for SECONDS: connections/s and the gateway's CPU per connection. */
async function handshakes (tls: boolean): Promise<Run> {
  const end = Date.now() + SECONDS * 1000
  let done = 0
  let failed = 0
  const one = async (): Promise<void> => {
    await new Promise<void>(resolve => {
      const socket: Socket = tls
        ? tlsConnect({ host: '127.0.0.1', port: tlsPort, ca: cert.cert, ALPNProtocols: ['http/1.1'] })
        : netConnect({ host: '127.0.0.1', port: plainPort })
      let text = ''
      socket.setEncoding('utf8')
      socket.once(tls ? 'secureConnect' : 'connect', () => { socket.write('GET /x HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n') })
      socket.on('data', (c: string) => { text += c })
      socket.on('error', () => {})
      socket.once('close', () => {
        if (text.startsWith('HTTP/1.1 200')) done++
        else failed++
        resolve()
      })
    })
  }
  const before = await cpuUs()
  await Promise.all(Array.from({ length: HANDSHAKE_WORKERS }, async () => { while (Date.now() < end) await one() }))
  const cpu = await cpuUs() - before
  return { rps: done / SECONDS, failed, cpuUsPerReq: done === 0 ? NaN : cpu / done }
}

const TARGETS: Target[] = ['http/1.1', 'http/1.1+tls', 'h2+tls', 'h2c']
const runs: Record<string, Run[]> = {}
const add = (k: string, r: Run): void => { (runs[k] ??= []).push(r) }
const ratios: Record<string, number[]> = {}
const addRatio = (k: string, v: number): void => { (ratios[k] ??= []).push(v) }
const say = (line: string): void => { process.stdout.write(line + '\n') }
say(`bench:protocols: ${ROUNDS} rounds × ${SECONDS} s; ${CONNECTIONS} requests in flight (HTTP/1.1: ${CONNECTIONS} connections, h2: ${H2_CONNECTIONS} × ${STREAMS} streams); pinning ${pin.enabled ? 'on' : `off (${pin.reason ?? ''})`}`)
try {
  await h2load('http/1.1') // warm-up
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 0 ? [...TARGETS].reverse() : TARGETS
    const got: Partial<Record<Target, Run>> = {}
    for (const target of order) {
      const r = await h2load(target)
      got[target] = r
      add(target, r)
      say(`  round ${round}  ${target.padEnd(13)} ${r.rps.toFixed(0).padStart(7)} req/s  ${r.cpuUsPerReq.toFixed(1).padStart(6)} µs CPU/req  failed ${r.failed}`)
    }
    const plainConn = await handshakes(false)
    const tlsConn = await handshakes(true)
    add('new connection', plainConn)
    add('new TLS connection', tlsConn)
    say(`  round ${round}  new conn/req  ${plainConn.rps.toFixed(0).padStart(7)} conn/s ${plainConn.cpuUsPerReq.toFixed(1).padStart(6)} µs CPU/conn  failed ${plainConn.failed}`)
    say(`  round ${round}  new TLS/req   ${tlsConn.rps.toFixed(0).padStart(7)} conn/s ${tlsConn.cpuUsPerReq.toFixed(1).padStart(6)} µs CPU/conn  failed ${tlsConn.failed}`)
    const base = got['http/1.1'] as Run
    for (const target of TARGETS.slice(1)) addRatio(`${target} / http/1.1 req/s`, (got[target] as Run).rps / base.rps)
    addRatio('TLS handshake µs CPU', tlsConn.cpuUsPerReq - plainConn.cpuUsPerReq)
  }
} finally {
  await stopChild(gw)
  origin.closeAllConnections()
  origin.close()
  await rm(dir, { recursive: true, force: true })
}
say('\nmedians over rounds')
for (const [k, rs] of Object.entries(runs)) {
  say(`  ${k.padEnd(20)} ${median(rs.map(r => r.rps)).toFixed(0).padStart(7)} /s  ${median(rs.map(r => r.cpuUsPerReq)).toFixed(1).padStart(6)} µs gateway CPU each  failed ${rs.reduce((n, r) => n + r.failed, 0)}`)
}
say('same-round ratios (median)')
for (const [k, v] of Object.entries(ratios)) say(`  ${k.padEnd(28)} ${median(v).toFixed(k.includes('µs') ? 0 : 2)}`)
