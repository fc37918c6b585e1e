/**
 * The payment-safety chaos drill, shared by scripts/chaos-payments.ts and its
 * test. Two fault upstreams (pay-a primary, pay-b backup) and the gateway run
 * in this process; an open-loop client sends `POST /pay/charge`, most with a
 * unique Idempotency-Key, some keys sent again by the client (concurrently,
 * later, or with another body), some without a key; a seeded schedule injects
 * resets, latency spikes, 503 bursts and outages (port closed, connections
 * destroyed: new requests are refused, so never sent, and may be retried to
 * the other upstream). Afterwards every request the
 * upstreams RECEIVED is grouped: a key (or an unkeyed request) received more
 * than once is a duplicate charge, and the drill passes only with none.
 *
 * The fault upstream records a request in `received` once its body has been
 * read, before it decides to reset, hang or fail it, so a request that was
 * reset unanswered still counts (it may have been charged). Requests whose
 * body was never fully read (`count` − `received`) are reported apart: they
 * cannot be attributed to a key, and an upstream cannot act on half a body.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Agent, request } from 'undici'
import { Gateway } from '../../gateway/app/gateway.js'
import { PolicyError, formatIssue } from '../../gateway/policy/issues.js'
import { startFaultUpstream, type Fault, type FaultUpstream, type ReceivedRequest } from './fault-upstream.js'

export const ROUTE = 'payments'
export const UPSTREAMS = ['pay-a', 'pay-b'] as const
export type UpstreamName = typeof UPSTREAMS[number]
/** Header the gateway sets on a replayed response. */
export const REPLAY_HEADER = 'idempotency-replayed'

export interface ChaosOptions {
  readonly seconds: number
  readonly ratePerSec: number
  readonly seed: number
  /** Healthy latency of both upstreams. @default 20 */
  readonly baseLatencyMs?: number
  /** Share of keys the client sends again. @default 0.2 */
  readonly resendShare?: number
  /** Share of requests sent without a key. @default 0.1 */
  readonly unkeyedShare?: number
  /** The policy YAML for the two upstream URLs. @default chaosPolicy */
  readonly policy?: (urlA: string, urlB: string) => string
  /** Live progress, one line a second and one per chaos change. */
  readonly log?: (line: string) => void
}

/** CHAOS_SECONDS (20), CHAOS_RATE (100 req/s), CHAOS_SEED (5: in 20 s its schedule has every kind of chaos on pay-a, pay-b and both). */
export function chaosOptionsFromEnv (env: NodeJS.ProcessEnv = process.env): ChaosOptions {
  const num = (v: string | undefined, dflt: number): number => v !== undefined && v !== '' && Number.isFinite(Number(v)) && Number(v) > 0 ? Number(v) : dflt
  return { seconds: num(env.CHAOS_SECONDS, 20), ratePerSec: num(env.CHAOS_RATE, 100), seed: Math.trunc(num(env.CHAOS_SEED, 5)) }
}

/** Status codes are quoted: the retry schema takes them as strings. */
export const chaosPolicy = (urlA: string, urlB: string): string => `version: chaos-payments
listeners: [{ host: 127.0.0.1, port: 0 }]
admin: { host: 127.0.0.1, port: 0 }
routes:
  - name: ${ROUTE}
    match: { pathPrefix: /pay }
    timeouts: { connect: 500ms, responseHeaders: 2s, total: 5s }
    upstreams:
      - { name: pay-a, url: "${urlA}" }
      - { name: pay-b, url: "${urlB}", role: backup }
    breaker: { consecutiveFailures: 5, openFor: 1s }
    retry:
      attempts: 3
      on: [connect-failure, reset, timeout, "502", "503", "504"]
      budget: { ratio: 20%, minPerSecond: 5 }
    idempotency:
      ttl: 10m
      waitFor: 5s
`

/** The gateway refused the policy (e.g. a block it does not know yet). */
export class PolicyRejectedError extends Error {
  constructor (readonly lines: string[], readonly policy: string) {
    const numbered = policy.trimEnd().split('\n').map((l, i) => `  ${String(i + 1).padStart(3)} | ${l}`)
    super(`the gateway rejects the chaos policy:\n${lines.map(l => '  ' + l).join('\n')}\nthe policy (a temp file, removed again):\n${numbered.join('\n')}`)
  }
}

// ---------------------------------------------------------------- the plan

/** mulberry32: small, fast, seeded. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** first: a key's first send; resend: same key and body again; mismatch: same key, other body. */
export type SendKind = 'first' | 'resend' | 'mismatch' | 'unkeyed'

export interface PlannedSend {
  readonly id: string
  readonly kind: SendKind
  readonly atMs: number
  readonly body: string
  readonly key?: string
  /** Id of the key's first send, for re-sends. */
  readonly first?: string
}

export interface ChaosEpisode {
  readonly atMs: number
  readonly durationMs: number
  readonly targets: UpstreamName[]
  /** down: the upstream's port is closed and its connections destroyed (see FaultUpstream.setDown); fault is then {}. */
  readonly kind: 'reset' | 'latency' | 'errors' | 'down'
  readonly fault: Fault
}

const charge = (n: number, amount: number): string => JSON.stringify({ order: `o-${n}`, amount, currency: 'EUR' })

/** Every send of the run, in send order. Of the re-sent keys, 30 % go again within 10 ms (while the first is in flight), 50 % within 500 ms, 20 % within 500 ms with another body. */
export function planSends (opts: ChaosOptions): PlannedSend[] {
  const rand = prng(opts.seed)
  const sends: PlannedSend[] = []
  for (let n = 0; n < Math.floor(opts.seconds * opts.ratePerSec); n++) {
    const atMs = n * 1000 / opts.ratePerSec
    const amount = 100 + Math.floor(rand() * 10_000)
    if (rand() < (opts.unkeyedShare ?? 0.1)) {
      sends.push({ id: `u-${n}`, kind: 'unkeyed', atMs, body: charge(n, amount) })
      continue
    }
    const key = `chaos-${n}`
    sends.push({ id: `k-${n}`, kind: 'first', atMs, key, body: charge(n, amount) })
    if (rand() >= (opts.resendShare ?? 0.2)) continue
    const r = rand()
    const delay = r < 0.3 ? rand() * 10 : rand() * 500
    const mismatch = r >= 0.8
    sends.push({ id: `${mismatch ? 'm' : 'r'}-${n}`, kind: mismatch ? 'mismatch' : 'resend', atMs: atMs + delay, key, body: charge(n, mismatch ? amount + 1 : amount), first: `k-${n}` })
  }
  return sends.sort((a, b) => a.atMs - b.atMs)
}

/** Chaos episodes one after another: 0.5–2 s each, 0.3–2 s apart; mostly pay-a, sometimes pay-b or both; resets, latency, 503s or the upstream down. */
export function planChaos (opts: ChaosOptions): ChaosEpisode[] {
  const rand = prng(opts.seed ^ 0x5eed)
  const end = opts.seconds * 1000
  const episodes: ChaosEpisode[] = []
  for (let t = 500 + rand() * 1000; t + 300 < end;) {
    const durationMs = Math.round(Math.min(500 + rand() * 1500, end - t))
    const w = rand()
    const targets: UpstreamName[] = w < 0.65 ? ['pay-a'] : w < 0.85 ? ['pay-b'] : ['pay-a', 'pay-b']
    const k = rand()
    const at = Math.round(t)
    const episode: ChaosEpisode = k < 0.3
      ? { atMs: at, durationMs, targets, kind: 'reset', fault: { resetRate: round2(0.3 + rand() * 0.5) } }
      : k < 0.55
        ? { atMs: at, durationMs, targets, kind: 'latency', fault: { latencyMs: Math.round(2500 + rand() * 1000) } }
        : k < 0.8
          ? { atMs: at, durationMs, targets, kind: 'errors', fault: { errorRate: round2(0.5 + rand() * 0.5), errorStatus: 503 } }
          : { atMs: at, durationMs, targets, kind: 'down', fault: {} }
    episodes.push(episode)
    t += durationMs + 300 + rand() * 1700
  }
  return episodes
}

// ---------------------------------------------------------------- the run

export interface ClientResult {
  readonly id: string
  readonly kind: SendKind
  readonly key?: string
  readonly atMs: number
  readonly latencyMs: number
  /** 0 when no response arrived. */
  readonly status: number
  readonly error?: string
  readonly gatewayError?: string
  readonly upstream?: string
  readonly replayed: boolean
  /** Re-sends: the key's first send had not been answered yet when this one went out. */
  readonly firstInFlight?: boolean
}

export interface ChaosResult {
  readonly config: ChaosOptions & { baseLatencyMs: number, resendShare: number, unkeyedShare: number }
  readonly startedAt: string
  readonly episodes: ChaosEpisode[]
  readonly client: ReturnType<typeof summarizeClient>
  readonly upstreams: Record<UpstreamName, { received: number, count: number, notFullyRead: number, truncated: boolean }>
  readonly duplicates: ReturnType<typeof findDuplicates>
  readonly gateway: { delivery: Record<string, unknown> | null, events: Record<string, number>, eventsSeen: number }
  readonly verdict: { pass: boolean, line: string }
  readonly notes: string[]
}

const MAX_RECEIVED = 1_000_000

/** Runs the drill once; everything it started is closed again when it resolves or throws. */
export async function runPaymentChaos (opts: ChaosOptions): Promise<ChaosResult> {
  const config = { baseLatencyMs: 20, resendShare: 0.2, unkeyedShare: 0.1, ...opts }
  const baseline: Fault = { latencyMs: config.baseLatencyMs, jitterMs: 5 }
  const ups: FaultUpstream[] = []
  let gw: Gateway | undefined
  let dir: string | undefined
  try {
    for (const [i, name] of UPSTREAMS.entries()) {
      ups.push(await startFaultUpstream({ name, baseline, random: prng(config.seed * 31 + i), maxReceived: MAX_RECEIVED }))
    }
    const [a, b] = ups as [FaultUpstream, FaultUpstream]
    dir = await mkdtemp(join(tmpdir(), 'chaos-payments-'))
    const file = join(dir, 'policy.yaml')
    const policy = (config.policy ?? chaosPolicy)(a.url, b.url)
    await writeFile(file, policy)
    try {
      gw = await Gateway.start({ policyFile: file, watch: false, controlTickMs: 20 })
    } catch (err) {
      if (err instanceof PolicyError) throw new PolicyRejectedError(err.issues.map(formatIssue), policy)
      throw err
    }
    const addr = gw.addresses()
    const listener = addr.listeners[0]
    if (listener === undefined || addr.admin === null) throw new Error('the chaos policy needs a listener and the admin API')
    const gatewayUrl = `http://127.0.0.1:${listener.port}`
    const adminUrl = `http://127.0.0.1:${addr.admin.port}`
    await preflight(gatewayUrl)
    for (const u of ups) u.resetCounts()
    return await drive(config, { a, b }, gatewayUrl, adminUrl)
  } finally {
    await gw?.close()
    await Promise.all(ups.map(async u => await u.close()))
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  }
}

async function preflight (gatewayUrl: string): Promise<void> {
  const res = await request(`${gatewayUrl}/pay/charge`, { method: 'POST', body: charge(-1, 1), headers: { 'content-type': 'application/json' } })
  await res.body.dump()
  if (res.statusCode !== 200) throw new Error(`preflight POST /pay/charge answered ${res.statusCode}, expected 200`)
}

async function drive (config: ChaosResult['config'], ups: { a: FaultUpstream, b: FaultUpstream }, gatewayUrl: string, adminUrl: string): Promise<ChaosResult> {
  const log = config.log ?? (() => {})
  const plan = planSends(config)
  const episodes = planChaos(config)
  const byName: Record<UpstreamName, FaultUpstream> = { 'pay-a': ups.a, 'pay-b': ups.b }
  const agent = new Agent({ connections: 2048, pipelining: 1 })
  const events = new EventCollector(adminUrl)
  const answered = new Set<string>()
  const results: ClientResult[] = []
  const pending: Array<Promise<void>> = []
  const t0 = performance.now() + 100
  const startedAt = new Date(performance.timeOrigin + t0).toISOString()
  const since = (): number => performance.now() - t0

  const send = async (p: PlannedSend): Promise<void> => {
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (p.key !== undefined) headers['idempotency-key'] = p.key
    else headers['x-chaos-id'] = p.id // unkeyed requests are told apart upstream by this header
    const firstInFlight = p.first === undefined ? undefined : !answered.has(p.first)
    let outcome: Pick<ClientResult, 'status' | 'error' | 'gatewayError' | 'upstream' | 'replayed'>
    try {
      const res = await agent.request({ origin: gatewayUrl, path: '/pay/charge', method: 'POST', headers, body: p.body, headersTimeout: 20_000, bodyTimeout: 20_000 })
      await res.body.dump()
      const h = (name: string): string | undefined => { const v = res.headers[name]; return Array.isArray(v) ? v[0] : v }
      outcome = { status: res.statusCode, gatewayError: h('x-gateway-error'), upstream: h('x-gateway-upstream'), replayed: h(REPLAY_HEADER) === 'true' }
    } catch (err) {
      const e = err as { code?: unknown, name?: unknown }
      outcome = { status: 0, error: typeof e.code === 'string' ? e.code : String(e.name ?? 'Error'), replayed: false }
    }
    if (p.kind === 'first') answered.add(p.id)
    results.push(strip({ id: p.id, kind: p.kind, key: p.key, atMs: p.atMs, latencyMs: round1(since() - p.atMs), ...outcome, firstInFlight }))
  }

  const timers: NodeJS.Timeout[] = []
  /** setDown calls in progress; a failure to come back up fails the drill. */
  const switches: Array<Promise<void>> = []
  const at = (ms: number, fn: () => void): void => { timers.push(setTimeout(fn, Math.max(0, t0 + ms - performance.now()))) }
  for (const e of episodes) {
    at(e.atMs, () => {
      for (const name of e.targets) {
        if (e.kind === 'down') switches.push(byName[name].setDown(true))
        else byName[name].set(e.fault)
      }
      log(`  t=${secs(since())} chaos  ${e.targets.join('+')} ${e.kind}${e.kind === 'down' ? '' : ` ${JSON.stringify(e.fault)}`} for ${secs(e.durationMs)}`)
    })
    at(e.atMs + e.durationMs, () => {
      for (const name of e.targets) {
        if (e.kind === 'down') switches.push(byName[name].setDown(false))
        else byName[name].set({})
      }
    })
  }
  const ticker = setInterval(() => {
    const done = results.length
    const ok = results.filter(r => r.status >= 200 && r.status < 300).length
    log(`  t=${secs(since())} sent ${pending.length} answered ${done} 2xx ${ok} non-2xx ${done - ok} | pay-a ${ups.a.count} pay-b ${ups.b.count} received`)
    void events.poll()
  }, 1000)

  try {
    await new Promise<void>(resolve => {
      let i = 0
      const tick = (): void => {
        const now = since()
        for (let p = plan[i]; p !== undefined && p.atMs <= now; p = plan[++i]) pending.push(send(p))
        const next = plan[i]
        if (next === undefined) resolve()
        else timers.push(setTimeout(tick, Math.max(0, next.atMs - since())))
      }
      tick()
    })
    await Promise.all(pending)
  } finally {
    clearInterval(ticker)
    for (const t of timers) clearTimeout(t)
    for (const u of [ups.a, ups.b]) u.set({})
    await Promise.all(switches)
    await Promise.all([ups.a, ups.b].map(async u => await u.setDown(false)))
    await agent.close()
  }
  await events.poll()
  const delivery = await routeDelivery(adminUrl)

  const notes: string[] = [...events.notes]
  if (delivery === null) notes.push(`/status has no routes[${ROUTE}].delivery (retry/hedge counters not reported yet)`)
  const upstreams = {} as ChaosResult['upstreams']
  for (const name of UPSTREAMS) {
    const u = byName[name]
    const truncated = u.received.length >= MAX_RECEIVED
    upstreams[name] = { received: u.received.length, count: u.count, notFullyRead: truncated ? 0 : u.count - u.received.length, truncated }
    if (upstreams[name].notFullyRead > 0) notes.push(`${name}: ${upstreams[name].notFullyRead} request(s) arrived but their body was never fully read (aborted mid-upload); they carry no charge and are not attributed`)
  }
  results.sort((x, y) => x.atMs - y.atMs)
  const received = UPSTREAMS.flatMap(name => byName[name].received.map(r => ({ upstream: name, r })))
  const client = summarizeClient(results, received)
  const duplicates = findDuplicates(plan, received)
  const verdict = judge(client, duplicates)
  return { config: strip({ ...config, log: undefined, policy: undefined }), startedAt, episodes, client, upstreams, duplicates, gateway: { delivery, events: events.kinds(), eventsSeen: events.seen.size }, verdict, notes }
}

// ---------------------------------------------------------------- analysis

type Received = { upstream: UpstreamName, r: ReceivedRequest }

const header = (r: ReceivedRequest, name: string): string | undefined => {
  const v = r.headers[name]
  return Array.isArray(v) ? v[0] : v
}

const inc = (m: Record<string, number>, k: string): void => { m[k] = (m[k] ?? 0) + 1 }

function summarizeClient (results: readonly ClientResult[], received: readonly Received[]) {
  const statuses: Record<string, number> = {}
  const gatewayErrors: Record<string, number> = {}
  const transportErrors: Record<string, number> = {}
  const servedBy: Record<string, number> = {}
  const byKind: Record<SendKind, { sent: number, statuses: Record<string, number> }> = {
    first: { sent: 0, statuses: {} }, resend: { sent: 0, statuses: {} }, mismatch: { sent: 0, statuses: {} }, unkeyed: { sent: 0, statuses: {} }
  }
  for (const r of results) {
    inc(statuses, String(r.status))
    byKind[r.kind].sent++
    inc(byKind[r.kind].statuses, String(r.status))
    if (r.gatewayError !== undefined) inc(gatewayErrors, r.gatewayError)
    if (r.error !== undefined) inc(transportErrors, r.error)
    if (r.status >= 200 && r.status < 300 && !r.replayed) inc(servedBy, r.upstream ?? '?')
  }
  const keysReceived = new Set(received.map(x => header(x.r, 'idempotency-key')).filter(k => k !== undefined))
  const resends = results.filter(r => r.kind === 'resend' || r.kind === 'mismatch')
  return {
    sent: results.length,
    answered: results.filter(r => r.status > 0).length,
    ok: results.filter(r => r.status >= 200 && r.status < 300).length,
    keyed: results.filter(r => r.key !== undefined).length,
    keys: byKind.first.sent,
    unkeyed: byKind.unkeyed.sent,
    statuses,
    byKind,
    gatewayErrors,
    transportErrors,
    servedBy,
    replays: results.filter(r => r.replayed).length,
    conflicts409: results.filter(r => r.status === 409).length,
    unprocessable422: results.filter(r => r.status === 422).length,
    mismatch422: byKind.mismatch.statuses['422'] ?? 0,
    resendsWhileFirstInFlight: resends.filter(r => r.firstInFlight === true).length,
    /** 2xx for a key no upstream ever received: a success nobody charged (should be 0). */
    phantomSuccesses: results.filter(r => r.key !== undefined && r.status >= 200 && r.status < 300 && !keysReceived.has(r.key)).length
  }
}

/** Keys (and unkeyed requests) the upstreams received more than once, over both upstreams. */
function findDuplicates (plan: readonly PlannedSend[], received: readonly Received[]) {
  const ourKeys = new Set(plan.map(p => p.key).filter(k => k !== undefined))
  const keyed = new Map<string, Received[]>()
  const unkeyed = new Map<string, Received[]>()
  let other = 0
  for (const x of received) {
    const key = header(x.r, 'idempotency-key')
    const id = header(x.r, 'x-chaos-id')
    // A key the gateway generated for an unkeyed request is not ours; the request is grouped by its id.
    if (key !== undefined && ourKeys.has(key)) keyed.set(key, [...keyed.get(key) ?? [], x])
    else if (id !== undefined) unkeyed.set(id, [...unkeyed.get(id) ?? [], x])
    else other++
  }
  const dup = (m: Map<string, Received[]>): Array<[string, Received[]]> => [...m].filter(([, xs]) => xs.length > 1)
  const dk = dup(keyed)
  const du = dup(unkeyed)
  const clientSends = countBy(plan.flatMap(p => p.key === undefined ? [] : [p.key]))
  const extra = (d: Array<[string, Received[]]>): number => d.reduce((n, [, xs]) => n + xs.length - 1, 0)
  const t0 = Math.min(...received.map(x => x.r.at))
  return {
    keysReceived: keyed.size,
    keyedDuplicateKeys: dk.length,
    /** Of those, keys received more often than the client sent them: the gateway itself sent one again. */
    keyedResentByGateway: dk.filter(([key, xs]) => xs.length > (clientSends[key] ?? 0)).length,
    unkeyedReceived: unkeyed.size,
    unkeyedDuplicates: du.length,
    /** Charges beyond the first, over both groups. */
    extraCharges: extra(dk) + extra(du),
    otherReceived: other,
    examples: [...dk, ...du].slice(0, 10).map(([id, xs]) => ({
      id,
      received: xs.map(x => ({ upstream: x.upstream, atMs: x.r.at - t0, bodySha256: x.r.bodySha256.slice(0, 12) }))
    }))
  }
}

function judge (client: ChaosResult['client'], d: ChaosResult['duplicates']): ChaosResult['verdict'] {
  const counts = `${client.keyed} keyed requests, ${client.unkeyed} unkeyed`
  if (client.ok === 0) return { pass: false, line: `FAIL: no request succeeded at all (${counts}); the set-up is broken` }
  if (d.extraCharges === 0) return { pass: true, line: `PASS: 0 duplicate charges (${counts})` }
  return { pass: false, line: `FAIL: ${d.extraCharges} duplicate charges: ${d.keyedDuplicateKeys} keys and ${d.unkeyedDuplicates} unkeyed requests received more than once by the upstreams (${counts})` }
}

// ---------------------------------------------------------------- admin API

class EventCollector {
  readonly seen = new Map<number, string>()
  readonly notes: string[] = []
  #last = 0
  constructor (readonly adminUrl: string) {}

  async poll (): Promise<void> {
    const res = await getJson(`${this.adminUrl}/events?since=${this.#last}&limit=1000`)
    const list = (res.body as { events?: unknown } | null)?.events
    if (!Array.isArray(list)) {
      const note = `GET /events answered ${res.status}${res.error === undefined ? '' : ` (${res.error})`}`
      if (!this.notes.includes(note)) this.notes.push(note)
      return
    }
    for (const e of list as Array<{ seq?: unknown, kind?: unknown }>) {
      if (typeof e?.seq !== 'number') continue
      this.seen.set(e.seq, typeof e.kind === 'string' ? e.kind : '?')
      this.#last = Math.max(this.#last, e.seq)
    }
  }

  kinds (): Record<string, number> {
    const out: Record<string, number> = {}
    for (const kind of this.seen.values()) inc(out, kind)
    return out
  }
}

/** `routes[payments].delivery` from /status (retries, hedges, …), or null while the gateway does not report it. */
async function routeDelivery (adminUrl: string): Promise<Record<string, unknown> | null> {
  const res = await getJson(`${adminUrl}/status`)
  const routes = (res.body as { routes?: unknown } | null)?.routes
  const route = Array.isArray(routes) ? routes.find((r: { name?: unknown }) => r?.name === ROUTE) as { delivery?: unknown } | undefined : undefined
  const d = route?.delivery
  return d !== null && typeof d === 'object' ? d as Record<string, unknown> : null
}

async function getJson (url: string): Promise<{ status: number, body: unknown, error?: string }> {
  try {
    const res = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 })
    const text = await res.body.text()
    try { return { status: res.statusCode, body: JSON.parse(text) } } catch { return { status: res.statusCode, body: null } }
  } catch (err) {
    return { status: 0, body: null, error: String((err as { code?: unknown }).code ?? err) }
  }
}

// ---------------------------------------------------------------- report

/** The summary as printable lines. */
export function reportLines (r: ChaosResult): string[] {
  const c = r.client
  const d = r.duplicates
  const hist = (m: Record<string, number>): string => Object.keys(m).length === 0 ? '-' : Object.entries(m).sort(([x], [y]) => x.localeCompare(y)).map(([k, v]) => `${k}: ${v}`).join(', ')
  const num = (v: unknown): string => typeof v === 'number' ? String(v) : 'n/a'
  const kinds = (Object.keys(c.byKind) as SendKind[]).map(k => `${k} ${c.byKind[k].sent} (${hist(c.byKind[k].statuses)})`)
  return [
    `chaos: ${r.episodes.length} episodes (${hist(countBy(r.episodes.map(e => `${e.targets.join('+')} ${e.kind}`)))})`,
    `requests: ${c.sent} sent, ${c.answered} answered, ${c.ok} 2xx; ${c.keyed} keyed (${c.keys} keys), ${c.unkeyed} unkeyed`,
    `  statuses        ${hist(c.statuses)}`,
    ...kinds.map(k => `  ${k}`),
    `  gateway errors  ${hist(c.gatewayErrors)}`,
    `  transport errs  ${hist(c.transportErrors)}`,
    `  served by       ${hist(c.servedBy)} (2xx, not replayed)`,
    `  replays ${c.replays}, 409 ${c.conflicts409}, 422 ${c.unprocessable422} (mismatched bodies: ${c.mismatch422}/${c.byKind.mismatch.sent} got 422), re-sends while the first was in flight ${c.resendsWhileFirstInFlight}`,
    `  2xx for a key no upstream received: ${c.phantomSuccesses}`,
    `upstreams received: ${UPSTREAMS.map(n => `${n} ${r.upstreams[n].received}${r.upstreams[n].notFullyRead > 0 ? ` (+${r.upstreams[n].notFullyRead} not fully read)` : ''}`).join(', ')}`,
    `  keyed:   ${d.keysReceived} keys received, ${d.keyedDuplicateKeys} received more than once (${d.keyedResentByGateway} more often than the client sent them)`,
    `  unkeyed: ${d.unkeyedReceived} received, ${d.unkeyedDuplicates} received more than once`,
    ...d.examples.slice(0, 5).map(e => `    e.g. ${e.id}: ${e.received.map(x => `${x.upstream}@${Math.round(x.atMs)}ms body ${x.bodySha256}`).join(' | ')}`),
    `gateway: failed attempts never sent ${num(r.gateway.delivery?.neverSent)}, maybe processed ${num(r.gateway.delivery?.maybeProcessed)}; retries ${num(r.gateway.delivery?.retries)}, hedges ${num(r.gateway.delivery?.hedges)}; events ${hist(r.gateway.events)}`,
    ...r.notes.map(n => `note: ${n}`),
    r.verdict.line
  ]
}

const countBy = (xs: readonly string[]): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const x of xs) inc(out, x)
  return out
}
const round1 = (x: number): number => Math.round(x * 10) / 10
const round2 = (x: number): number => Math.round(x * 100) / 100
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`
/** Drops undefined fields (exact JSON, no `"key": undefined` noise). */
const strip = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
