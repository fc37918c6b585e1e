/**
 * Scenario S1 (docs/scenarios.md), shared by `npm run demo` and
 * bench/s1-scenario.ts: the payment primary goes from 200 ms to 5 s under a
 * steady open-loop load, then heals. Everything runs in this process: the
 * demo services on free ports, the gateway on a copy of policies/demo.yaml
 * pointed at them, the load, and a once-a-second poll of the admin API for
 * shift events and the reported share. The result is a per-second timeline,
 * the event log and a summary checked against the S1 targets.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { request } from 'undici'
import { parseDocument } from 'yaml'
import { Gateway } from '../../gateway/app/gateway.js'
import { PolicyError, formatIssue } from '../../gateway/policy/issues.js'
import { startDemoUpstreams, DEMO_NAMES, type DemoUpstreams } from '../demo-upstreams.js'
import { runOpenLoop, type RequestResult } from './open-loop.js'
import { checkIncident, type IncidentCheck } from './s1-incident.js'

export type { RequestResult } from './open-loop.js'

/** The route and upstream the scenario is about (names in policies/demo.yaml). */
export const S1_ROUTE = 'payments'
export const S1_PRIMARY = 'pay-primary'

/** Timings and load of a run; times are ms since the load started. */
export interface S1Config {
  readonly ratePerSec: number
  readonly spikeAtMs: number
  readonly healAtMs: number
  readonly endAtMs: number
  /** Healthy latency of both payment services. */
  readonly baseLatencyMs: number
  /** Latency of the primary between spikeAt and healAt. */
  readonly spikeLatencyMs: number
  /** Policy whose ports and upstream URLs are replaced for the run. */
  readonly policyTemplate: string
}

export const S1_DEFAULTS: S1Config = {
  ratePerSec: 200,
  spikeAtMs: 10_000,
  healAtMs: 40_000,
  endAtMs: 75_000,
  baseLatencyMs: 200,
  spikeLatencyMs: 5000,
  policyTemplate: fileURLToPath(new URL('../../policies/demo.yaml', import.meta.url))
}

/**
 * Short timings: spike at 3 s, heal at 8 s, end at 24 s. The 16 s after
 * healing leave room for the policy's ramp-back (last 5 s answers, 2 s signal
 * window, 3 s recovery dwell, 4 steps of 1 s), so every target can pass.
 */
export const S1_FAST: Partial<S1Config> = { spikeAtMs: 3000, healAtMs: 8000, endAtMs: 24_000 }

/** S1_DEFAULTS, or S1_FAST with `S1_FAST=1`; `S1_RATE` sets the rate. */
export function s1ConfigFromEnv (env: NodeJS.ProcessEnv = process.env): S1Config {
  const fast = env.S1_FAST === '1' ? S1_FAST : {}
  const rate = Number(env.S1_RATE)
  return { ...S1_DEFAULTS, ...fast, ...(rate > 0 ? { ratePerSec: rate } : {}) }
}

/** An event from `GET /events`; parsed defensively, unknown kinds are kept. */
export interface GatewayEvent {
  seq: number
  at: string
  t: number
  kind: string
  route: string
  upstream?: string
  /** Shares for shift events; other kinds may report states (strings). */
  before?: number | string
  after?: number | string
  measured?: number
  threshold?: number
  enforced: boolean
  policyVersion: string
  detail: string
}

/** An event with its time on the scenario clock (from `at`). */
export interface ScenarioEvent extends GatewayEvent {
  readonly atMs: number
}

/** One second of the timeline, over the requests intended in that second. */
export interface TimelineRow {
  t: number
  sent: number
  /** Responses (or errors) that came back in this second, whenever sent. */
  completed: number
  p50Ms: number | null
  p99Ms: number | null
  errors: number
  /** Share served by an upstream other than the primary (of those with an `x-gateway-upstream`). */
  backupShare: number | null
  /** `routes[].shift.share` from /status at the end of the second; null when not reported. */
  gatewayShare: number | null
}

/** Callbacks for a live view; times are ms since the load started. */
export interface S1Hooks {
  onStart? (info: { gatewayUrl: string, adminUrl: string }): void
  onPhase? (phase: 'spike' | 'heal', atMs: number): void
  onSend? (intendedMs: number): void
  onResult? (result: RequestResult): void
  /** At the end of each second, after the admin poll; `gatewayShare` null when not reported. */
  onSecond? (t: number, gatewayShare: number | null, events: ScenarioEvent[]): void
}

export interface S1Result {
  config: S1Config
  startedAt: string
  timeline: TimelineRow[]
  events: ScenarioEvent[]
  /** The gateway's reported share, as polled. */
  shareSamples: Array<{ atMs: number, share: number | null }>
  summary: S1Summary
  /** Things that could not be measured (e.g. no /events yet). */
  notes: string[]
  /** The incident the gateway recorded, its report, and how the report compares with the summary. */
  incident: IncidentCheck
}

/** Runs S1 once; resolves when the load has completed and everything is closed again. */
export async function runS1Scenario (config: S1Config = S1_DEFAULTS, hooks: S1Hooks = {}): Promise<S1Result> {
  const demo = await startDemoUpstreams({
    ports: Object.fromEntries(DEMO_NAMES.map(n => [n, 0])),
    baseLatencyMs: { 'pay-primary': config.baseLatencyMs, 'pay-backup': config.baseLatencyMs }
  })
  let gw: Gateway | undefined
  try {
    gw = await startGateway(config.policyTemplate, demo)
    const a = gw.addresses()
    const listener = a.listeners[0]
    if (listener === undefined || a.admin === null) throw new Error(`${config.policyTemplate} needs a listener and the admin API`)
    const gatewayUrl = `http://127.0.0.1:${listener.port}`
    const adminUrl = `http://127.0.0.1:${a.admin.port}`
    await preflight(gatewayUrl)
    hooks.onStart?.({ gatewayUrl, adminUrl })
    return await drive(config, hooks, demo, gatewayUrl, adminUrl)
  } finally {
    await gw?.close()
    await demo.close()
  }
}

/** Writes the template with free ports and the demo services' URLs, and starts the gateway on it. */
async function startGateway (template: string, demo: DemoUpstreams): Promise<Gateway> {
  const doc = parseDocument(await readFile(template, 'utf8'))
  const policy = doc.toJS() as { listeners?: unknown[], admin?: unknown, routes?: Array<{ upstreams?: Array<{ name?: string }> }> }
  policy.listeners?.forEach((_, i) => doc.setIn(['listeners', i, 'port'], 0))
  if (policy.admin !== undefined) doc.setIn(['admin', 'port'], 0)
  policy.routes?.forEach((r, i) => r.upstreams?.forEach((u, j) => {
    const running = demo.upstreams[u.name as keyof DemoUpstreams['upstreams']] as { url: string } | undefined
    if (running !== undefined) doc.setIn(['routes', i, 'upstreams', j, 'url'], running.url)
  }))
  const dir = await mkdtemp(join(tmpdir(), 's1-'))
  const file = join(dir, 'demo.yaml')
  try {
    await writeFile(file, doc.toString())
    return await Gateway.start({ policyFile: file, watch: false })
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err
    throw new Error(`${template} is rejected:\n${err.issues.map(i => '  ' + formatIssue(i)).join('\n')}`, { cause: err })
  } finally {
    // watch: false never reads the file again; removing it now leaves nothing behind on Ctrl-C.
    await rm(dir, { recursive: true, force: true })
  }
}

/** One request before the clock starts, so a broken setup fails loudly instead of as 100 % errors. */
async function preflight (gatewayUrl: string): Promise<void> {
  const res = await request(`${gatewayUrl}/pay/checkout`, { method: 'POST', body: '{"amount":1}', headers: { 'content-type': 'application/json' } })
  await res.body.dump()
  if (res.statusCode !== 200) throw new Error(`preflight POST /pay/checkout answered ${res.statusCode}, expected 200`)
}

async function drive (config: S1Config, hooks: S1Hooks, demo: DemoUpstreams, gatewayUrl: string, adminUrl: string): Promise<S1Result> {
  // A short lead so the first second is not cut by set-up work.
  const t0 = performance.now() + 100
  const startedAt = new Date(performance.timeOrigin + t0).toISOString()
  const poller = new AdminPoller(adminUrl, performance.timeOrigin + t0)
  const primary = demo.upstreams['pay-primary']
  const abort = new AbortController()
  const load = runOpenLoop({
    url: gatewayUrl,
    ratePerSec: config.ratePerSec,
    durationMs: config.endAtMs,
    startAt: t0,
    signal: abort.signal,
    ...(hooks.onSend === undefined ? {} : { onSend: (_: number, ms: number) => hooks.onSend?.(ms) }),
    ...(hooks.onResult === undefined ? {} : { onResult: hooks.onResult })
  })
  const phase = (ms: number, name: 'spike' | 'heal', fault: { latencyMs?: number }): NodeJS.Timeout =>
    setTimeout(() => {
      primary.set(fault)
      hooks.onPhase?.(name, performance.now() - t0)
    }, Math.max(0, t0 + ms - performance.now()))
  const timers = [
    phase(config.spikeAtMs, 'spike', { latencyMs: config.spikeLatencyMs }),
    phase(config.healAtMs, 'heal', {})
  ]
  const gatewayShares: Array<number | null> = []
  try {
    for (let s = 0; s * 1000 < config.endAtMs; s++) {
      await sleepUntil(t0 + (s + 1) * 1000)
      const { share, fresh } = await poller.poll()
      gatewayShares[s] = share
      hooks.onSecond?.(s, share, fresh)
    }
  } finally {
    for (const timer of timers) clearTimeout(timer)
    abort.abort()
  }
  const results = await load
  await poller.poll() // events of the last requests
  const timeline = buildTimeline(results, config.endAtMs, gatewayShares)
  const summary = summarize(config, results, poller.events, poller.samples, poller.eventsSupported)
  const steps = poller.events.filter(e => e.kind === 'shift.step' && e.enforced && e.route === S1_ROUTE).length
  const incident = await checkIncident(adminUrl, S1_ROUTE, performance.timeOrigin + t0, config.spikeAtMs, config.healAtMs, { ...summary, steps })
  return { config, startedAt, timeline, events: poller.events, shareSamples: poller.samples, summary, notes: poller.notes, incident }
}

/** Polls `/events` (tolerating 404 until the shift controller exists) and the route's share in `/status`. */
class AdminPoller {
  readonly events: ScenarioEvent[] = []
  readonly samples: Array<{ atMs: number, share: number | null }> = []
  readonly notes: string[] = []
  eventsSupported = true
  #lastSeq: number | null = null

  constructor (readonly adminUrl: string, readonly wallAt0: number) {}

  async poll (): Promise<{ share: number | null, fresh: ScenarioEvent[] }> {
    const [fresh, share] = await Promise.all([this.#events(), this.#share()])
    this.samples.push({ atMs: round1(performance.timeOrigin + performance.now() - this.wallAt0), share })
    return { share, fresh }
  }

  async #events (): Promise<ScenarioEvent[]> {
    if (!this.eventsSupported) return []
    const res = await getJson(`${this.adminUrl}/events${this.#lastSeq === null ? '' : `?since=${this.#lastSeq}`}`)
    if (res.status === 404) {
      this.eventsSupported = false
      this.#note('GET /events answered 404: no event log in this gateway (yet); shift times come from the client side only')
      return []
    }
    const list = (res.body as { events?: unknown } | null)?.events
    if (res.status !== 200 || !Array.isArray(list)) {
      this.#note(`GET /events answered ${res.status}${res.error === undefined ? '' : ` (${res.error})`}`)
      return []
    }
    const fresh = list.map(parseEvent).filter((e): e is GatewayEvent => e !== null && (this.#lastSeq === null || e.seq > this.#lastSeq))
      .map(e => ({ ...e, atMs: round1(Date.parse(e.at) - this.wallAt0) }))
    for (const e of fresh) this.#lastSeq = Math.max(this.#lastSeq ?? e.seq, e.seq)
    this.events.push(...fresh)
    return fresh
  }

  async #share (): Promise<number | null> {
    const res = await getJson(`${this.adminUrl}/status`)
    const routes = (res.body as { routes?: unknown } | null)?.routes
    const route = Array.isArray(routes) ? routes.find((r: { name?: unknown }) => r?.name === S1_ROUTE) as { shift?: { share?: unknown } } | undefined : undefined
    const share = route?.shift?.share
    if (typeof share === 'number') return share
    this.#note(res.status === 200 ? `/status has no routes[${S1_ROUTE}].shift.share` : `GET /status answered ${res.status}`)
    return null
  }

  #note (text: string): void {
    if (!this.notes.includes(text)) this.notes.push(text)
  }
}

function parseEvent (raw: unknown): GatewayEvent | null {
  if (raw === null || typeof raw !== 'object' || typeof (raw as { seq?: unknown }).seq !== 'number') return null
  const e = raw as GatewayEvent
  // Kept as sent; only what the summary and the demo rely on is coerced.
  const str = (v: unknown, dflt = ''): string => typeof v === 'string' ? v : dflt
  return { ...e, at: str(e.at), kind: str(e.kind, '?'), route: str(e.route), detail: str(e.detail), enforced: e.enforced !== false }
}

/** GET with a short deadline: a poll must never hold up the next second. */
async function getJson (url: string): Promise<{ status: number, body: unknown, error?: string }> {
  try {
    const res = await request(url, { headersTimeout: 800, bodyTimeout: 800 })
    const text = await res.body.text()
    try {
      return { status: res.statusCode, body: JSON.parse(text) }
    } catch {
      return { status: res.statusCode, body: null }
    }
  } catch (err) {
    return { status: 0, body: null, error: String((err as { code?: unknown }).code ?? err) }
  }
}

function buildTimeline (results: readonly RequestResult[], endAtMs: number, gatewayShares: ReadonlyArray<number | null>): TimelineRow[] {
  const seconds = Math.ceil(endAtMs / 1000)
  const sent: RequestResult[][] = Array.from({ length: seconds }, () => [])
  const completed = new Array<number>(seconds).fill(0)
  for (const r of results) {
    sent[Math.floor(r.intendedMs / 1000)]?.push(r)
    const c = Math.floor((r.intendedMs + r.latencyMs) / 1000)
    if (c < seconds) completed[c] = (completed[c] ?? 0) + 1
  }
  return sent.map((rs, t) => ({ t, sent: rs.length, completed: completed[t] ?? 0, ...stats(rs), gatewayShare: gatewayShares[t] ?? null }))
}

/** Latency quantiles, errors and backup share of some requests. */
export function stats (rs: readonly RequestResult[]): { p50Ms: number | null, p99Ms: number | null, errors: number, backupShare: number | null } {
  const latencies = rs.map(r => r.latencyMs).sort((a, b) => a - b)
  const served = rs.filter(r => r.upstream !== undefined)
  return {
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    errors: rs.filter(isError).length,
    backupShare: served.length === 0 ? null : served.filter(r => r.upstream !== S1_PRIMARY).length / served.length
  }
}

export const isError = (r: RequestResult): boolean => r.status < 200 || r.status > 299

async function sleepUntil (at: number): Promise<void> {
  const ms = at - performance.now()
  if (ms > 0) await new Promise(resolve => setTimeout(resolve, ms))
}

/** One S1 target and how the run did on it. */
export interface Target {
  name: string
  limit: string
  value: string
  pass: boolean
}

/** Times are ms after the spike (shift) or after healing (restore). */
export interface S1Summary {
  requests: number
  errors: number
  /** First enforced `shift.*` event that moved traffic away from the primary. */
  firstShiftMs: number | null
  /** End of the first 1 s window of sent requests (sliding by 100 ms) with ≥ 50 % served by the backup. */
  backup50Ms: number | null
  backup90Ms: number | null
  /** Latency of requests sent from the first ≥ 90 % window until healing. */
  settledP50Ms: number | null
  settledP99Ms: number | null
  /** The gateway's share back to 0 (event, else /status poll); null when not reported or not reached. */
  restoreGatewayMs: number | null
  /** End of the first 1 s window after healing with no request served by the backup. */
  restoreClientMs: number | null
  /** Shift direction changes from "more to the backup" to "less" while the spike lasts; null without events. */
  reversals: number | null
  targets: Target[]
  pass: boolean
}

const SLOT_MS = 100
const WINDOW_SLOTS = 10

/** Client-side backup share over 1 s windows of intended send time, sliding by one 100 ms slot. */
class BackupWindows {
  readonly #served: number[] = []
  readonly #backup: number[] = []

  constructor (results: readonly RequestResult[]) {
    for (const r of results) {
      if (r.upstream === undefined) continue
      const k = Math.floor(r.intendedMs / SLOT_MS)
      this.#served[k] = (this.#served[k] ?? 0) + 1
      if (r.upstream !== S1_PRIMARY) this.#backup[k] = (this.#backup[k] ?? 0) + 1
    }
  }

  /** Start (ms) of the first window inside [from, until) whose share passes, or null. */
  first (from: number, until: number, pass: (share: number) => boolean): number | null {
    for (let k = Math.ceil(from / SLOT_MS); (k + WINDOW_SLOTS) * SLOT_MS <= until; k++) {
      let served = 0
      let backup = 0
      for (let j = k; j < k + WINDOW_SLOTS; j++) {
        served += this.#served[j] ?? 0
        backup += this.#backup[j] ?? 0
      }
      if (served > 0 && pass(backup / served)) return k * SLOT_MS
    }
    return null
  }
}

type ShiftEvent = ScenarioEvent & { before: number, after: number }

/** The S1 summary of a finished run (exported for tests). */
export function summarize (config: S1Config, results: readonly RequestResult[], events: readonly ScenarioEvent[],
  samples: ReadonlyArray<{ atMs: number, share: number | null }>, eventsSupported: boolean): S1Summary {
  const { spikeAtMs: spike, healAtMs: heal, endAtMs: end } = config
  const errors = results.filter(isError).length
  const shifts = events.filter((e): e is ShiftEvent => e.kind.startsWith('shift.') && e.enforced && typeof e.before === 'number' && typeof e.after === 'number')
    .sort((a, b) => a.seq - b.seq)
  const during = shifts.filter(e => e.atMs >= spike && e.atMs < heal)
  const first = during.find(e => e.after > e.before)
  const windows = new BackupWindows(results)
  const after = (w: number | null, from: number): number | null => w === null ? null : w + WINDOW_SLOTS * SLOT_MS - from
  const w50 = windows.first(spike, heal, share => share >= 0.5)
  const w90 = windows.first(spike, heal, share => share >= 0.9)
  const settled = w90 === null ? [] : results.filter(r => r.intendedMs >= w90 && r.intendedMs < heal).map(r => r.latencyMs).sort((a, b) => a - b)
  const shifted = windows.first(spike, heal, share => share > 0.01) !== null
  const restoreClientMs = shifted ? after(windows.first(heal, end, share => share === 0), heal) : null
  const gatewayReports = eventsSupported || samples.some(s => s.share !== null)
  const restoreGatewayMs = shifted && gatewayReports ? gatewayRestore(shifts, samples, heal) : null
  const reversals = eventsSupported ? countReversals(during) : null

  const restoreParts = [restoreClientMs, ...(gatewayReports ? [restoreGatewayMs] : [])]
  const restoreMs = restoreParts.some(x => x === null) ? null : Math.max(...restoreParts as number[])
  const noEvents = eventsSupported ? 'never' : 'n/a (no /events)'
  const targets: Target[] = [
    within('first shift after the spike', first === undefined ? null : first.atMs - spike, 2000, noEvents),
    within('backup share ≥ 50 %', after(w50, spike), 3000),
    within('backup share ≥ 90 %', after(w90, spike), 5000),
    { name: 'client errors', limit: '0', value: String(errors), pass: errors === 0 },
    { name: 'reversals during the spike', limit: '0', value: reversals === null ? noEvents : String(reversals), pass: reversals === 0 },
    within('fully back on the primary after healing', restoreMs, 30_000, shifted ? `> ${fmtS(end - heal)}` : 'nothing shifted')
  ]
  return {
    requests: results.length,
    errors,
    firstShiftMs: first === undefined ? null : first.atMs - spike,
    backup50Ms: after(w50, spike),
    backup90Ms: after(w90, spike),
    settledP50Ms: percentile(settled, 0.5),
    settledP99Ms: percentile(settled, 0.99),
    restoreGatewayMs,
    restoreClientMs,
    reversals,
    targets,
    pass: targets.every(t => t.pass)
  }
}

/** When the gateway's share was back at 0 after healing: the event if there is one, else the first poll. */
function gatewayRestore (shifts: readonly ShiftEvent[], samples: ReadonlyArray<{ atMs: number, share: number | null }>, heal: number): number | null {
  const event = shifts.find(e => e.atMs >= heal && e.after <= 0)
  if (event !== undefined) return event.atMs - heal
  const sample = samples.find(s => s.atMs >= heal && s.share === 0)
  return sample === undefined ? null : sample.atMs - heal
}

function countReversals (shifts: readonly ShiftEvent[]): number {
  let reversals = 0
  let rising = false
  for (const e of shifts) {
    if (e.after > e.before) rising = true
    else if (e.after < e.before && rising) {
      reversals++
      rising = false
    }
  }
  return reversals
}

function within (name: string, ms: number | null, limitMs: number, missing = 'never'): Target {
  return { name, limit: `≤ ${limitMs / 1000} s`, value: ms === null ? missing : fmtS(ms), pass: ms !== null && ms <= limitMs }
}

/** The summary as printable lines (demo and bench). */
export function summaryLines (s: S1Summary, config: S1Config): string[] {
  const ms = (x: number | null): string => x === null ? '-' : `${Math.round(x)} ms`
  const secs = (x: number | null): string => x === null ? '-' : fmtS(x)
  const passed = s.targets.filter(t => t.pass).length
  return [
    `${s.requests} requests, ${s.errors} errors; spike at t=${config.spikeAtMs / 1000} s, healed at t=${config.healAtMs / 1000} s`,
    ...s.targets.map(t => `  ${t.pass ? 'PASS' : 'FAIL'}  ${t.name.padEnd(40)} ${t.value.padStart(16)}   target ${t.limit}`),
    `  after the shift settled (≥ 90 % window until healing): p50 ${ms(s.settledP50Ms)}, p99 ${ms(s.settledP99Ms)}`,
    `  back on the primary after healing: gateway share 0 after ${secs(s.restoreGatewayMs)}, client backup share 0 after ${secs(s.restoreClientMs)}`,
    `${s.pass ? 'PASS' : 'FAIL'}: ${passed}/${s.targets.length} targets met`
  ]
}

const fmtS = (ms: number): string => `${(ms / 1000).toFixed(2)} s`

/** Nearest-rank quantile of sorted values, rounded to 0.1 ms; null when empty. */
export function percentile (sorted: readonly number[], q: number): number | null {
  const v = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
  return v === undefined ? null : round1(v)
}

const round1 = (x: number): number => Math.round(x * 10) / 10
