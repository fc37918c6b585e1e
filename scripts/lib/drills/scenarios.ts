/**
 * The named drills: for each, what a user should expect, which load it
 * sends, the fault timeline (steps at ms after the fault; the first step IS
 * the fault, one step heals it) and how its figures are judged. Evaluation
 * only combines the pure functions of measure.ts with the targets below; it
 * sees the run through `Measured` and never touches a server. The targets
 * are fixed here on purpose: the policy is the README defaults (see
 * setup.ts), so a FAIL means the defaults miss the target, not a tuning slip.
 */
import type { FaultUpstream } from '../fault-upstream.js'
import type { DrillRetry } from './setup.js'
import { atMost, happened, info, type Figure } from './figures.js'
import {
  clientFailures, countArrivals, countReversals, duplicateKeys, firstArrival, firstShareBucket, fiveXxShare,
  latencyQuantile, maxWindowShare, settledAt, type Arrival, type ClientSample, type TimedEvent
} from './measure.js'

export const PRIMARY = 'pay-primary'
export const BACKUP = 'pay-backup'

export interface DrillUpstreams {
  readonly primary: FaultUpstream
  readonly backup: FaultUpstream
}

/** Values a step wants recorded, e.g. the primary's in-flight count just before a kill. */
export type StepValues = Record<string, number>

export interface Step {
  /** Planned time, ms after the fault; the first step is at 0 and injects the fault. */
  readonly atMs: number
  readonly label: string
  readonly apply: (u: DrillUpstreams) => void | StepValues | Promise<void | StepValues>
  /** The step that heals; its time once applied (after it resolved) is the heal time. */
  readonly heal?: true
}

/** What a finished run gives the evaluation; every time is ms after the fault. */
export interface Measured {
  readonly ratePerSec: number
  /** Drill requests the upstreams received (health checks, probes, preflight excluded). */
  readonly arrivals: readonly Arrival[]
  readonly clients: readonly ClientSample[]
  readonly events: readonly TimedEvent[]
  /** When the heal step had been applied (for kill: the port listens again). */
  readonly healMs: number
  /** When the load's schedule ended. */
  readonly endMs: number
  /** Values recorded by the steps, merged. */
  readonly stepValues: Readonly<StepValues>
}

export interface Drill {
  readonly name: string
  /** One line, for --list. */
  readonly summary: string
  /** One or two sentences printed before the figures. */
  readonly expect: string
  /** keyed: POST /pay/checkout with a unique Idempotency-Key each; get: GET /pay/checkout without a key. */
  readonly load: 'keyed' | 'get'
  /** Adds `healthCheck: { path: /healthz, interval: 1s }` to the route. */
  readonly healthCheck: boolean
  /** Retries of the route (setup.ts); connect-failure when absent. */
  readonly retry?: DrillRetry
  readonly steps: readonly Step[]
  /** Load kept up after the heal, to see the ramp back. */
  readonly tailMs: number
  readonly evaluate: (m: Measured) => Figure[]
}

const FAULT_MS = 15_000
const TAIL_MS = 20_000

const heal = (atMs: number, label: string, apply: Step['apply']): Step => ({ atMs, label, apply, heal: true })

// ---- figures shared by several drills ----

function firstShift (m: Measured, judged: boolean): Figure {
  const at = firstArrival(m.arrivals, BACKUP, 0, m.healMs)
  const before = countArrivals(m.arrivals, BACKUP, -Infinity, 0)
  const detail = `first drill request received by ${BACKUP} at or after the fault; ${before} reached it during the warm-up`
  return judged ? atMost('firstShift', 'first shift (first backup arrival)', at, 1000, 'ms', detail) : info('firstShift', 'first shift (first backup arrival)', at, 'ms', detail)
}

function t90 (m: Measured, judged: boolean): Figure {
  const at = settledAt(m.arrivals, BACKUP, 0.9, 0, m.healMs)
  const detail = `end of the first 250 ms bucket (by arrival) from which ${BACKUP} got ≥ 90 % of arrivals in every bucket until the heal`
  return judged ? atMost('t90', 't90 (backup ≥ 90 % and staying)', at, 2000, 'ms', detail) : info('t90', 't90 (backup ≥ 90 % and staying)', at, 'ms', detail)
}

function recovery (m: Measured, judged: boolean, id = 'recovery', label = 'recovery (primary ≥ 50 % of a bucket)', limitMs?: number): Figure {
  const end = firstShareBucket(m.arrivals, PRIMARY, 0.5, m.healMs, m.endMs)
  const at = end === null ? null : end - m.healMs
  const detail = `after the heal: end of the first 250 ms bucket (aligned to the heal) in which ${PRIMARY} got ≥ 50 % of arrivals`
  if (!judged) return info(id, label, at, 'ms', detail)
  return limitMs === undefined ? happened(id, label, at, detail) : atMost(id, label, at, limitMs, 'ms', detail)
}

function clientErrors (m: Measured, limit = 0, label = 'client errors (non-2xx or transport)', detail?: string): Figure {
  const f = clientFailures(m.clients)
  return atMost('clientErrors', label, f.failed, limit, 'count', `${f.failed} of ${f.total}${outcomes(f.byOutcome)}${detail === undefined ? '' : `; ${detail}`}`)
}

function duplicates (m: Measured): Figure {
  const d = duplicateKeys(m.arrivals)
  return atMost('duplicates', 'duplicate idempotency keys (both upstreams)', d.duplicateKeys, 0, 'count',
    `${d.keyed} keyed arrivals, ${d.distinct} distinct keys, ${d.extraDeliveries} extra deliveries${d.examples.length === 0 ? '' : `: ${d.examples.join(', ')}`}`)
}

const outcomes = (by: Record<string, number>): string => {
  const parts = Object.entries(by).map(([k, n]) => `${k} ×${n}`)
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`
}

// ---- the drills ----

const spike: Drill = {
  name: 'spike',
  summary: 'primary 200 ms → 5 s for 15 s: traffic on the backup within 1 s, ≥ 90 % within 2 s, p99 ≤ 1 s, back after healing',
  expect: 'pay-primary slows from 200 ms to 5 s for 15 s. The gateway should send the first charge to pay-backup within 1 s, ' +
    'have ≥ 90 % there within 2 s so client p99 stays under 1 s, move back after the heal, and fail or duplicate nothing.',
  load: 'keyed',
  healthCheck: false,
  steps: [
    { atMs: 0, label: 'fault: pay-primary latency 200 ms → 5 s', apply: u => { u.primary.set({ latencyMs: 5000 }) } },
    heal(FAULT_MS, 'heal: pay-primary back to 200 ms', u => { u.primary.set({}) })
  ],
  tailMs: TAIL_MS,
  evaluate: m => {
    const settled = settledAt(m.arrivals, BACKUP, 0.9, 0, m.healMs)
    const p99 = settled === null ? { n: 0, ms: null } : latencyQuantile(m.clients, 0.99, settled + 1000, m.healMs)
    return [
      firstShift(m, true),
      t90(m, true),
      atMost('p99', 'client p99 from t90 + 1 s to the heal', p99.ms, 1000, 'ms',
        settled === null ? 'no t90, so no window' : `${p99.n} requests sent in [${fmt(settled + 1000)}, ${fmt(m.healMs)}) after the fault`),
      recovery(m, true),
      clientErrors(m),
      duplicates(m)
    ]
  }
}

const blackhole: Drill = {
  name: 'blackhole',
  summary: 'primary accepts and never answers for 15 s: ≥ 90 % on the backup within 2 s, ≤ 1.5 s of traffic caught',
  expect: 'pay-primary accepts requests and never answers for 15 s. The gateway should have ≥ 90 % on pay-backup within 2 s, ' +
    'so at most 1.5 s worth of requests is caught by the hole (those get a 504 after the 15 s responseHeaders timeout); no duplicate charges.',
  load: 'keyed',
  healthCheck: false,
  steps: [
    { atMs: 0, label: 'fault: pay-primary hangs every request', apply: u => { u.primary.set({ hangRate: 1 }) } },
    heal(FAULT_MS, 'heal: pay-primary answers again (requests already hung stay hung)', u => { u.primary.set({}) })
  ],
  tailMs: TAIL_MS,
  evaluate: m => {
    const caught = countArrivals(m.arrivals, PRIMARY, 0, m.healMs)
    const f = clientFailures(m.clients)
    return [
      t90(m, true),
      atMost('caught', 'caught (primary arrivals between fault and heal)', caught, Math.round(1.5 * m.ratePerSec), 'count',
        `1.5 s × ${m.ratePerSec} req/s; they are never answered`),
      duplicates(m),
      info('client5xx', 'clients that got a 5xx', f.fiveXx, 'count', `expected only for the ${caught} caught; all failures: ${f.failed}${outcomes(f.byOutcome)}`),
      firstShift(m, false),
      recovery(m, false)
    ]
  }
}

const errors: Drill = {
  name: 'errors',
  summary: 'primary answers 30 % 503s for 15 s (GET, no key): ≤ 0.5 % of clients see a 5xx during the fault',
  expect: 'pay-primary answers 30 % of requests with 503 for 15 s under unkeyed GET load, the route retrying as the README\'s ' +
    'defaults do (retry: {}). The shift should move the traffic on the failure rate before the retry budget runs out, keeping ' +
    'the 5xx share seen by clients during the fault at or below 0.5 %.',
  load: 'get',
  healthCheck: false,
  retry: 'defaults',
  steps: [
    { atMs: 0, label: 'fault: pay-primary answers 30 % 503', apply: u => { u.primary.set({ errorRate: 0.3, errorStatus: 503 }) } },
    heal(FAULT_MS, 'heal: pay-primary answers 200 again', u => { u.primary.set({}) })
  ],
  tailMs: TAIL_MS,
  evaluate: m => {
    const s = fiveXxShare(m.clients, 0, m.healMs)
    const f = clientFailures(m.clients)
    return [
      atMost('fiveXxShare', 'client 5xx share, sent from fault to heal', s.share, 0.005, 'share', `${s.fiveXx} of ${s.sent} requests`),
      t90(m, false),
      recovery(m, false),
      firstShift(m, false),
      info('clientErrors', 'client errors, whole drill', f.failed, 'count', `of ${f.total}${outcomes(f.byOutcome)}`)
    ]
  }
}

const FLAP_MS = 2000
const FLAP_FOR_MS = 20_000

const flapping: Drill = {
  name: 'flapping',
  summary: 'primary alternates 200 ms ↔ 3 s every 2 s for 20 s: at most 1 reversal, no errors',
  expect: 'pay-primary alternates between 3 s and 200 ms every 2 s for 20 s, then stays healthy. The gateway should not chase ' +
    'the flapping: at most one reversal (a shift.step after a shift.ramp), no client errors, no duplicate charges.',
  load: 'keyed',
  healthCheck: false,
  steps: [
    ...Array.from({ length: FLAP_FOR_MS / FLAP_MS }, (_, i): Step => i % 2 === 0
      ? { atMs: i * FLAP_MS, label: `${i === 0 ? 'fault' : 'flap'}: pay-primary latency 3 s`, apply: u => { u.primary.set({ latencyMs: 3000 }) } }
      : { atMs: i * FLAP_MS, label: 'flap: pay-primary latency 200 ms', apply: u => { u.primary.set({}) } }),
    heal(FLAP_FOR_MS, 'heal: pay-primary stays at 200 ms', u => { u.primary.set({}) })
  ],
  tailMs: TAIL_MS,
  evaluate: m => {
    const r = countReversals(m.events)
    const moves = m.events.filter(e => e.enforced && (e.kind === 'shift.step' || e.kind === 'shift.ramp'))
    const max = maxWindowShare(m.arrivals, BACKUP, 0, m.endMs)
    return [
      atMost('reversals', 'reversals (shift.step after shift.ramp)', r.count, 1, 'count',
        `${moves.filter(e => e.kind === 'shift.step').length} steps, ${moves.filter(e => e.kind === 'shift.ramp').length} ramps` +
        (r.atMs.length === 0 ? '' : `; reversals at ${r.atMs.map(fmt).join(', ')}`)),
      clientErrors(m),
      duplicates(m),
      info('maxBackupShare', 'max backup share in a 1 s window', max?.share ?? null, 'share', max === null ? undefined : `window starting ${fmt(max.startMs)}`)
    ]
  }
}

const slowBackup: Drill = {
  name: 'slow-backup',
  summary: 'primary and backup both 5 s for 15 s: the backup never gets > 30 % of a 1 s window, no errors',
  expect: 'Both pay-primary and pay-backup slow to 5 s for 15 s. Moving traffic cannot help, so the gateway should keep it ' +
    'where it is: pay-backup at most 30 % of arrivals in any 1 s window, no client errors, no duplicate charges.',
  load: 'keyed',
  healthCheck: false,
  steps: [
    { atMs: 0, label: 'fault: pay-primary and pay-backup latency 5 s', apply: u => { u.primary.set({ latencyMs: 5000 }); u.backup.set({ latencyMs: 5000 }) } },
    heal(FAULT_MS, 'heal: both back to 200 ms', u => { u.primary.set({}); u.backup.set({}) })
  ],
  tailMs: TAIL_MS,
  evaluate: m => {
    const max = maxWindowShare(m.arrivals, BACKUP, 0, m.endMs)
    return [
      atMost('maxBackupShare', 'max backup share in any 1 s window', max?.share ?? null, 0.3, 'share',
        max === null ? 'no arrivals' : `1 s windows every 250 ms from the fault to the end of the load; worst starts at ${fmt(max.startMs)} (${max.arrivals} arrivals)`),
      clientErrors(m),
      duplicates(m)
    ]
  }
}

const KILL_MS = 10_000

const kill: Drill = {
  name: 'kill',
  summary: 'primary killed for 10 s (port closed, connections dropped): only its in-flight requests fail, back within 3 s of restart',
  expect: 'pay-primary is killed for 10 s (port closed, open connections destroyed), with health checks every 1 s. Only the requests it ' +
    'had in flight may fail; new ones go to pay-backup. After the restart it should have ≥ 50 % of a 250 ms bucket again within 3 s.',
  load: 'keyed',
  healthCheck: true,
  steps: [
    {
      atMs: 0,
      label: 'fault: pay-primary killed',
      apply: async u => {
        const inflightAtKill = u.primary.inflight
        await u.primary.setDown(true)
        return { inflightAtKill }
      }
    },
    heal(KILL_MS, 'heal: pay-primary restarted on its port', async u => { await u.primary.setDown(false) })
  ],
  tailMs: TAIL_MS,
  evaluate: m => {
    const inflight = m.stepValues.inflightAtKill ?? null
    const first = firstArrival(m.arrivals, PRIMARY, m.healMs)
    return [
      inflight === null
        ? { ...clientErrors(m), target: '≤ in flight at the kill', pass: false, detail: 'in-flight count not recorded' }
        : clientErrors(m, inflight, 'client failures (≤ primary in flight at the kill)', `pay-primary had ${inflight} in flight just before the kill (health checks and probes included)`),
      recovery(m, true, 'restore', 'restore after restart (primary ≥ 50 % of a bucket)', 3000),
      info('firstAfterRestart', 'first drill request on the primary after restart', first === null ? null : first - m.healMs, 'ms'),
      duplicates(m),
      info('inflightAtKill', 'primary in flight at the kill', inflight, 'count'),
      t90(m, false),
      firstShift(m, false)
    ]
  }
}

/** Every drill, in the order `npm run drills` runs them. */
export const DRILLS: readonly Drill[] = [spike, blackhole, errors, flapping, slowBackup, kill]

export const findDrill = (name: string): Drill | undefined => DRILLS.find(d => d.name === name)

/** The time of the heal step, as planned. */
export const plannedHealMs = (d: Drill): number => d.steps.find(s => s.heal === true)?.atMs ?? 0

const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)} s`
