/**
 * `npm run load`: a small, steady load for the README walkthrough. A latency
 * shift needs traffic to measure, so run this in a second terminal while you
 * inject faults into the demo services of `npm start`.
 *
 * It sends RATE requests per second (open loop: on schedule, whatever the
 * answers do, so a slow upstream cannot slow the sender down) and prints one
 * line per second: what was answered in that second, by which upstream (the
 * gateway's `x-gateway-upstream` header), errors by status, requests still in
 * flight, and the slowest answer. New admin-API events (shift, breaker,
 * probe...) are printed as they happen; `attempt.failed` events are only
 * counted. Ctrl-C stops sending, waits for the answers and prints a total.
 *
 *   npm run load                                   # 25 req/s POST /pay/checkout for 300 s
 *   npm run load -- --rate 40 --seconds 60
 *   npm run load -- --method GET --path /products/sku-1
 *
 * Options: --rate N (default 25), --seconds S (300), --method (POST),
 * --path (/pay/checkout), --url (http://127.0.0.1:8080), --admin
 * (http://127.0.0.1:9901; --admin '' turns event printing off). The admin
 * request carries `Authorization: Bearer $GATEWAY_ADMIN_TOKEN` when it is set.
 */
import { parseArgs } from 'node:util'
import { runOpenLoop, type RequestResult } from './lib/open-loop.js'

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '25' },
    seconds: { type: 'string', default: '300' },
    method: { type: 'string', default: 'POST' },
    path: { type: 'string', default: '/pay/checkout' },
    url: { type: 'string', default: 'http://127.0.0.1:8080' },
    admin: { type: 'string', default: 'http://127.0.0.1:9901' }
  }
})
const rate = Number(args.rate)
const seconds = Number(args.seconds)
if (!(rate > 0 && rate <= 5000) || !(seconds > 0)) {
  console.error('load: --rate must be in (0, 5000] and --seconds above 0')
  process.exit(2)
}
const method = args.method.toUpperCase() as 'GET' | 'POST'
const token = process.env.GATEWAY_ADMIN_TOKEN

interface AdminEvent { seq: number, at: string, kind: string, route: string, upstream?: string, before?: unknown, after?: unknown, detail: string }

/** Polls GET /events?since=N; prints new events, counts attempt.failed. */
class EventTail {
  #since = -1
  #warned = false
  failedAttempts = 0
  constructor (readonly admin: string, readonly startedAt: number) {}

  async poll (): Promise<string[]> {
    if (this.admin === '') return []
    try {
      const res = await fetch(`${this.admin}/events?since=${Math.max(0, this.#since)}`, {
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(900)
      })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      const body = await res.json() as { events: AdminEvent[], lastSeq: number }
      const first = this.#since < 0
      this.#since = body.lastSeq
      if (first) return [] // only what happens from now on
      const lines: string[] = []
      for (const e of body.events) {
        if (e.kind === 'attempt.failed') { this.failedAttempts++; continue }
        const change = e.before === undefined && e.after === undefined ? '' : ` ${String(e.before)} → ${String(e.after)}`
        const t = ((Date.parse(e.at) - this.startedAt) / 1000).toFixed(1)
        lines.push(`        ${t.padStart(5)}s event ${e.kind} ${e.route}${e.upstream === undefined ? '' : `/${e.upstream}`}${change}: ${e.detail}`)
      }
      return lines
    } catch (err) {
      if (!this.#warned) {
        this.#warned = true
        return [`        (no events: ${this.admin}/events: ${(err as Error).message})`]
      }
      return []
    }
  }
}

const abort = new AbortController()
let stopping = false
process.on('SIGINT', () => {
  if (stopping) process.exit(130)
  stopping = true
  process.stdout.write('load: stopping, waiting for the answers in flight (Ctrl-C again to quit at once)\n')
  abort.abort()
})

let sent = 0
let answered = 0
let second: RequestResult[] = []
const label = (r: RequestResult): string => r.status === 0 ? `error ${r.error ?? '?'}` : r.status >= 400 ? `${r.upstream ?? 'gateway'} ${r.status}` : r.upstream ?? `status ${r.status}`
const counts = (rs: readonly RequestResult[]): string => {
  const by = new Map<string, number>()
  for (const r of rs) by.set(label(r), (by.get(label(r)) ?? 0) + 1)
  return [...by].sort((a, b) => a[0].localeCompare(b[0])).map(([k, n]) => `${k} ${n}`).join(', ')
}

const startedAt = Date.now()
const events = new EventTail(args.admin, startedAt)
await events.poll()
process.stdout.write(`load: ${method} ${args.url}${args.path}, ${rate} req/s for ${seconds} s (Ctrl-C to stop)\n`)
let lastFailed = 0
const timer = setInterval(() => {
  const t = Math.round((Date.now() - startedAt) / 1000)
  const done = second
  second = []
  const slowest = done.reduce((m, r) => Math.max(m, r.latencyMs), 0)
  void events.poll().then(lines => {
    const failed = events.failedAttempts - lastFailed
    lastFailed = events.failedAttempts
    process.stdout.write(`${String(t).padStart(4)}s  answered ${String(done.length).padStart(3)}: ${counts(done) || '-'}` +
      `  | in flight ${sent - answered}  | slowest ${Math.round(slowest)} ms${failed > 0 ? `  | attempt.failed ${failed}` : ''}\n`)
    for (const line of lines) process.stdout.write(`${line}\n`)
  })
}, 1000)

const results = await runOpenLoop({
  url: args.url,
  path: args.path,
  method,
  ...(method === 'POST' ? {} : { body: '' }), // no body on a GET
  ratePerSec: rate,
  durationMs: seconds * 1000,
  signal: abort.signal,
  onSend: () => { sent++ },
  onResult: r => { answered++; second.push(r) }
})
clearInterval(timer)
const errors = results.filter(r => r.status === 0 || r.status >= 500).length
process.stdout.write(`load: ${results.length} requests: ${counts(results)}; ${errors} errors (5xx or no answer)\n`)
