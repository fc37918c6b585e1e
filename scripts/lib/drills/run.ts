/**
 * Runs one drill end to end on its own fresh setup (setup.ts): open-loop
 * load through the gateway, a warm-up, the drill's fault steps on schedule,
 * the tail after the heal; then it waits for every answer, takes what the
 * upstreams received and the events the gateway logged (subscribed from the
 * start, so the ring's 1000-event limit loses nothing), closes everything
 * and hands the data to the drill's evaluation. All times are put on the
 * fault clock here: arrivals and events by wall clock (Date.now at the
 * fault), client sends by the monotonic clock (performance.now at the fault).
 * Ctrl-C (the signal) stops the steps and the load, closes the upstreams at
 * once so hung requests end, and returns an interrupted result.
 */
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { GatewayEvent } from '../../../gateway/events/types.js'
import { runOpenLoop, type RequestResult } from '../open-loop.js'
import { allPass, type Figure } from './figures.js'
import { arrivalTimeline, BUCKET_MS, toArrivals, toClientSamples, type Arrival, type ReceivedLike } from './measure.js'
import { BACKUP, PRIMARY, plannedHealMs, type Drill, type StepValues } from './scenarios.js'
import { SetupError, startDrillSetup, type DrillSetup } from './setup.js'

/** Marker header on every drill request: upstream arrivals without it are health checks, probes or the preflight. */
export const MARKER_HEADER = 'x-drill-seq'

export interface RunConfig {
  readonly ratePerSec: number
  /** Healthy load before the fault. */
  readonly warmupMs: number
  /** Client deadline per request (headers and each body gap); a request still unanswered then is a transport error. */
  readonly clientTimeoutMs: number
}

export const DEFAULT_RUN: RunConfig = { ratePerSec: 200, warmupMs: 5000, clientTimeoutMs: 25_000 }

/** A step as it happened; times in ms after the fault. */
export interface StepRecord {
  readonly label: string
  readonly plannedMs: number
  /** When it started to apply. */
  readonly atMs: number
  /** When it had been applied (setDown resolves once the port is closed or listening). */
  readonly appliedMs: number
  readonly values?: StepValues
}

/** An event as stored in the report: the gateway's, plus its time after the fault. */
export type ReportedEvent = GatewayEvent & { readonly atMs: number }

export interface DrillResult {
  readonly name: string
  readonly expect: string
  readonly startedAt: string
  readonly durationMs: number
  /** `setup` (exit 2), `harness` (an unexpected error while running, exit 2), `interrupted`, or null. */
  readonly failure: null | { readonly kind: 'setup' | 'harness' | 'interrupted', readonly message: string }
  readonly figures: Figure[]
  /** Every judged figure passed (false on any failure above). */
  readonly pass: boolean
  readonly policy: string | null
  /** What was run: load kind, warm-up and tail. */
  readonly plan: { readonly load: Drill['load'], readonly healthCheck: boolean, readonly retry: string, readonly warmupMs: number, readonly tailMs: number }
  readonly steps: StepRecord[]
  readonly counts: {
    readonly sent: number
    readonly arrivals: Record<string, number>
    /** Requests without the marker (health checks, latency probes, the preflight). */
    readonly unmarked: Record<string, number>
    /** Requests counted by an upstream whose body it never finished reading (not attributable to a key). */
    readonly unread: Record<string, number>
  }
  /** Every event except attempt.failed, oldest first. */
  readonly events: ReportedEvent[]
  /** attempt.failed events, counted by upstream, delivery class and retry decision; the first 20 kept. */
  readonly attemptFailed: { readonly total: number, readonly by: Record<string, number>, readonly first: ReportedEvent[] }
  /** Drill arrivals per 250 ms bucket from the start of the load: [startMs after the fault, pay-primary, pay-backup]. */
  readonly arrivalBuckets: { readonly bucketMs: number, readonly columns: string[], readonly rows: Array<[number, ...number[]]> }
}

type Log = (line: string) => void

/** Runs `drill`; never throws (failures are in the result). */
export async function runDrill (drill: Drill, config: RunConfig, signal: AbortSignal, log: Log): Promise<DrillResult> {
  const startedAt = new Date().toISOString()
  const began = performance.now()
  const healMs = plannedHealMs(drill)
  const durationMs = config.warmupMs + healMs + drill.tailMs
  const plan = { load: drill.load, healthCheck: drill.healthCheck, retry: drill.retry ?? 'connect-failure', warmupMs: config.warmupMs, tailMs: drill.tailMs }
  const empty = (kind: 'setup' | 'harness' | 'interrupted', message: string, policy: string | null = null): DrillResult => ({
    name: drill.name, expect: drill.expect, startedAt, durationMs: performance.now() - began, failure: { kind, message }, figures: [], pass: false, policy, plan,
    steps: [], counts: { sent: 0, arrivals: {}, unmarked: {}, unread: {} }, events: [], attemptFailed: { total: 0, by: {}, first: [] },
    arrivalBuckets: { bucketMs: BUCKET_MS, columns: [], rows: [] }
  })

  let setup: DrillSetup
  try {
    // received keeps every request of the drill (plus health checks and probes) with room to spare.
    setup = await startDrillSetup({ healthCheck: drill.healthCheck, retry: drill.retry, maxReceived: Math.ceil(config.ratePerSec * durationMs / 1000) * 2 + 20_000 })
  } catch (err) {
    return empty(err instanceof SetupError ? 'setup' : 'harness', (err as Error).message)
  }

  const raw: GatewayEvent[] = [...setup.gw.events.since(0)]
  const unsubscribe = setup.gw.events.subscribe(e => { raw.push(e) })
  const onAbort = (): void => { void setup.primary.close(); void setup.backup.close() }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    const run = await drive(drill, config, setup, durationMs, signal, log)
    if (signal.aborted) return { ...empty('interrupted', 'interrupted (Ctrl-C)', setup.policy), steps: run.steps }
    // Read before close(): close() only destroys sockets, but keep the copy independent of it anyway.
    const received = { [PRIMARY]: [...setup.primary.received], [BACKUP]: [...setup.backup.received] }
    const counts = { [PRIMARY]: setup.primary.count, [BACKUP]: setup.backup.count }
    return evaluate(drill, config, setup.policy, startedAt, began, run, received, counts, raw)
  } catch (err) {
    return empty('harness', (err as Error).stack ?? String(err), setup.policy)
  } finally {
    signal.removeEventListener('abort', onAbort)
    unsubscribe()
    await setup.close().catch((err: unknown) => { log(`  warning: closing the drill failed: ${(err as Error).message}`) })
  }
}

interface Driven {
  readonly results: RequestResult[]
  readonly steps: StepRecord[]
  /** Clocks at the fault. */
  readonly faultWall: number
  readonly faultPerf: number
  /** performance.now() the schedule counts from. */
  readonly t0: number
}

async function drive (drill: Drill, config: RunConfig, setup: DrillSetup, durationMs: number, signal: AbortSignal, log: Log): Promise<Driven> {
  const runId = randomUUID().slice(0, 8)
  const stopLoad = new AbortController()
  const stop = (): void => stopLoad.abort()
  signal.addEventListener('abort', stop, { once: true })
  // A short lead so the first requests are not cut by set-up work.
  const t0 = performance.now() + 100
  const rate = config.ratePerSec
  const load = runOpenLoop({
    url: setup.url,
    ratePerSec: rate,
    durationMs,
    startAt: t0,
    signal: stopLoad.signal,
    timeoutMs: config.clientTimeoutMs,
    // Room for every request a stalled upstream can hold (rate × the 15 s responseHeaders timeout, and more).
    connections: Math.max(2048, Math.ceil(rate * 25)),
    ...(drill.load === 'keyed'
      ? { method: 'POST' as const, headers: (seq: number) => ({ 'idempotency-key': `drill-${drill.name}-${runId}-${seq}`, [MARKER_HEADER]: String(seq) }) }
      : { method: 'GET' as const, body: null, headers: (seq: number) => ({ [MARKER_HEADER]: String(seq) }) })
  })

  const steps: StepRecord[] = []
  let faultWall = NaN
  let faultPerf = NaN
  let stepError: unknown
  log(`  warm-up ${fmtS(config.warmupMs)} at ${rate} req/s…`)
  try {
    const faultDue = t0 + config.warmupMs
    for (const step of drill.steps) {
      await sleepUntil(faultDue + step.atMs, signal)
      if (signal.aborted) break
      const wall = Date.now()
      const perf = performance.now()
      if (steps.length === 0) {
        faultWall = wall
        faultPerf = perf
      }
      const values = await step.apply(setup) ?? undefined
      const applied = performance.now()
      steps.push({ label: step.label, plannedMs: step.atMs, atMs: round1(perf - faultPerf), appliedMs: round1(applied - faultPerf), ...(values === undefined ? {} : { values }) })
      log(`  +${fmtS(perf - faultPerf)} ${step.label}${values === undefined ? '' : ` (${Object.entries(values).map(([k, v]) => `${k} ${v}`).join(', ')})`}`)
    }
    if (!signal.aborted) log(`  tail ${fmtS(drill.tailMs)}, then waiting for the last answers…`)
  } catch (err) {
    stepError = err
    stopLoad.abort()
  }
  try {
    const results = await load
    if (stepError !== undefined) throw stepError
    return { results, steps, faultWall, faultPerf, t0 }
  } finally {
    signal.removeEventListener('abort', stop)
  }
}

function evaluate (drill: Drill, config: RunConfig, policy: string, startedAt: string, began: number, run: Driven,
  received: Record<string, readonly ReceivedLike[]>,
  counts: Record<string, number>, raw: readonly GatewayEvent[]): DrillResult {
  const { faultWall, faultPerf, t0, steps } = run
  const arrivals: Arrival[] = []
  const arrivalCount: Record<string, number> = {}
  const unmarked: Record<string, number> = {}
  const unread: Record<string, number> = {}
  for (const [name, list] of Object.entries(received)) {
    const mine = toArrivals(name, list, faultWall, MARKER_HEADER)
    arrivals.push(...mine)
    arrivalCount[name] = mine.length
    unmarked[name] = list.length - mine.length
    unread[name] = (counts[name] ?? 0) - list.length
  }
  const clients = toClientSamples(run.results, faultPerf - t0)
  const events: ReportedEvent[] = raw.map(e => ({ ...e, atMs: Date.parse(e.at) - faultWall }))
  // Steps are recorded in plan order, so the heal step has the same index.
  const healStep = steps[drill.steps.findIndex(s => s.heal === true)]
  const durationMs = config.warmupMs + plannedHealMs(drill) + drill.tailMs
  const figures = drill.evaluate({
    ratePerSec: config.ratePerSec,
    arrivals,
    clients,
    events,
    healMs: healStep?.appliedMs ?? NaN,
    endMs: t0 + durationMs - faultPerf,
    stepValues: Object.assign({}, ...steps.map(s => s.values ?? {})) as StepValues
  })
  const failed = events.filter(e => e.kind === 'attempt.failed')
  const by: Record<string, number> = {}
  for (const e of failed) {
    const k = `${e.upstream ?? '?'} ${String(e.before)} ${String(e.after)}`
    by[k] = (by[k] ?? 0) + 1
  }
  return {
    name: drill.name,
    expect: drill.expect,
    startedAt,
    durationMs: performance.now() - began,
    failure: null,
    figures,
    pass: allPass(figures),
    policy,
    plan: { load: drill.load, healthCheck: drill.healthCheck, retry: drill.retry ?? 'connect-failure', warmupMs: config.warmupMs, tailMs: drill.tailMs },
    steps,
    counts: { sent: run.results.length, arrivals: arrivalCount, unmarked, unread },
    events: events.filter(e => e.kind !== 'attempt.failed'),
    attemptFailed: { total: failed.length, by, first: failed.slice(0, 20) },
    arrivalBuckets: {
      bucketMs: BUCKET_MS,
      columns: ['startMs', PRIMARY, BACKUP],
      // Aligned to the fault, like the figures' buckets; from the first bucket holding the load's start.
      rows: arrivalTimeline(arrivals, [PRIMARY, BACKUP], Math.floor((t0 - faultPerf) / BUCKET_MS) * BUCKET_MS, t0 + durationMs - faultPerf + 1000)
    }
  }
}

/** Resolves at `at` (performance.now) or as soon as the signal aborts; leaves no timer behind. */
async function sleepUntil (at: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await new Promise<void>(resolve => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, Math.max(0, at - performance.now()))
    signal.addEventListener('abort', done, { once: true })
  })
}

const round1 = (x: number): number => Math.round(x * 10) / 10
const fmtS = (ms: number): string => `${(ms / 1000).toFixed(2)} s`
