/**
 * Incidents: the events of one route grouped from the first sign of
 * trouble to full restore. An incident opens when a route gets its first
 * *condition* — traffic shifted to the backups, a breaker not closed, an
 * upstream ejected, a health check failing — and resolves when the last one
 * clears. Fed from the event log (record on the hot path, decide off it:
 * nothing here runs per request); bounded in memory.
 *
 * Severity is the worst seen during the incident:
 *   - `upstream`: one upstream out (breaker, ejection, health check), its
 *     route still served by the others;
 *   - `degraded`: traffic moved off the primaries (a shift), or more than
 *     one upstream out;
 *   - `unavailable`: at some event no upstream of the route could take
 *     traffic (clients got 503 GW_ERR_NO_HEALTHY_UPSTREAM).
 */
import type { GatewayEvent } from '../events/types.js'
import type { ResponseTally } from '../core/response-tally.js'
import { LATENCY_BOUNDS_S } from '../core/latency-buckets.js'

export type Severity = 'upstream' | 'degraded' | 'unavailable'
const RANK: Record<Severity, number> = { upstream: 0, degraded: 1, unavailable: 2 }

export interface Incident {
  readonly id: string
  readonly route: string
  status: 'open' | 'resolved'
  severity: Severity
  /** Wall time (ISO) and monotonic ms of the first and last event. */
  readonly openedAt: string
  readonly openedT: number
  resolvedAt: string | null
  resolvedT: number | null
  readonly policyVersions: string[]
  /** Upstreams that were out (breaker, ejection, health check) at some point. */
  readonly upstreams: string[]
  /** Largest backup share the shift applied (0..1). */
  peakBackupShare: number
  /** The incident's events, oldest first (at most MAX_EVENTS; `droppedEvents` counts the rest). */
  readonly events: GatewayEvent[]
  droppedEvents: number
  /** What clients of the route got while it lasted (so far, while open). */
  impact: Impact
}

export interface Impact {
  readonly requests: number
  readonly serverErrors: number
  readonly incomplete: number
  /** Upper bound of the bucket holding the p99 of request durations (s); null without requests. */
  readonly p99AtMostSeconds: number | null
}

interface TallyMark { readonly byClass: Float64Array, readonly buckets: Float64Array }

const MAX_EVENTS = 500
const SHIFT = 'shift'
const OVERLOAD = 'overload'

/** Whether each route could take traffic at the moment (composition root). */
export type RouteAvailable = (route: string) => boolean
/** The route's response tally (composition root), null for an unknown route. */
export type RouteTally = (route: string) => ResponseTally | null

export class IncidentTracker {
  readonly #capacity: number
  readonly #available: RouteAvailable
  readonly #tally: RouteTally
  /** Incident id → the route's tally when it opened. */
  readonly #marks = new Map<string, TallyMark>()
  /** Oldest first; resolved ones leave from the front beyond capacity. */
  readonly #incidents: Incident[] = []
  readonly #open = new Map<string, { incident: Incident, conditions: Set<string> }>()
  #seq = 0

  constructor (available: RouteAvailable, tally: RouteTally, capacity = 200) {
    this.#available = available
    this.#tally = tally
    this.#capacity = capacity
  }

  /** One event from the log. */
  readonly onEvent = (e: GatewayEvent): void => {
    if (e.route === '*' || e.kind === 'attempt.failed' || e.kind.startsWith('policy.')) {
      // Gateway-wide or per-request: noted in every open incident, never opens one.
      if (e.kind !== 'attempt.failed') for (const o of this.#open.values()) this.#note(o.incident, e)
      return
    }
    const change = conditionChange(e)
    let o = this.#open.get(e.route)
    if (o === undefined) {
      if (change === null || !change.on) return
      o = { incident: this.#start(e), conditions: new Set() }
      this.#open.set(e.route, o)
    }
    const inc = o.incident
    this.#note(inc, e)
    if (change !== null) {
      if (change.on) o.conditions.add(change.key)
      else o.conditions.delete(change.key)
      if (change.key !== SHIFT && change.key !== OVERLOAD && change.on && e.upstream !== undefined && !inc.upstreams.includes(e.upstream)) inc.upstreams.push(e.upstream)
    }
    if ((e.kind === 'shift.step' || e.kind === 'shift.ramp') && typeof e.after === 'number' && e.enforced) inc.peakBackupShare = Math.max(inc.peakBackupShare, e.after)
    const out = [...o.conditions].filter(c => c !== SHIFT && c !== OVERLOAD).length
    const now: Severity = !this.#available(e.route) ? 'unavailable' : o.conditions.has(SHIFT) || o.conditions.has(OVERLOAD) || out > 1 ? 'degraded' : 'upstream'
    if (RANK[now] > RANK[inc.severity]) inc.severity = now
    if (o.conditions.size === 0) {
      inc.impact = this.#impact(inc)
      this.#marks.delete(inc.id)
      inc.status = 'resolved'
      inc.resolvedAt = e.at
      inc.resolvedT = e.t
      this.#open.delete(e.route)
      this.#trim()
    }
  }

  /** Every incident kept, oldest first (open ones with their impact so far). */
  list (): readonly Incident[] {
    for (const o of this.#open.values()) o.incident.impact = this.#impact(o.incident)
    return this.#incidents
  }

  get (id: string): Incident | null {
    const inc = this.#incidents.find(i => i.id === id) ?? null
    if (inc !== null && inc.status === 'open') inc.impact = this.#impact(inc)
    return inc
  }

  #impact (inc: Incident): Impact {
    const t = this.#tally(inc.route)
    const mark = this.#marks.get(inc.id)
    if (t === null || mark === undefined) return inc.impact
    const cls = t.byClass.map((n, i) => n - (mark.byClass[i] as number))
    const buckets = t.duration.counts.map((n, i) => n - (mark.buckets[i] as number))
    const requests = cls.reduce((a, b) => a + b, 0)
    let p99: number | null = null
    const total = buckets.reduce((a, b) => a + b, 0)
    if (total > 0) {
      let seen = 0
      for (let i = 0; i < buckets.length; i++) {
        seen += buckets[i] as number
        if (seen >= 0.99 * total) { p99 = LATENCY_BOUNDS_S[i] ?? Infinity; break }
      }
    }
    return { requests, serverErrors: cls[4] as number, incomplete: cls[5] as number, p99AtMostSeconds: p99 }
  }

  #start (e: GatewayEvent): Incident {
    const inc: Incident = {
      id: `${e.at.slice(0, 10).replace(/-/g, '')}-${++this.#seq}`,
      route: e.route,
      status: 'open',
      severity: 'upstream',
      openedAt: e.at,
      openedT: e.t,
      resolvedAt: null,
      resolvedT: null,
      policyVersions: [],
      upstreams: [],
      peakBackupShare: 0,
      events: [],
      droppedEvents: 0,
      impact: { requests: 0, serverErrors: 0, incomplete: 0, p99AtMostSeconds: null }
    }
    const t = this.#tally(e.route)
    if (t !== null) this.#marks.set(inc.id, { byClass: t.byClass.slice(), buckets: t.duration.counts.slice() })
    this.#incidents.push(inc)
    this.#trim()
    return inc
  }

  #note (inc: Incident, e: GatewayEvent): void {
    if (inc.events.length < MAX_EVENTS) inc.events.push(e)
    else inc.droppedEvents++
    if (!inc.policyVersions.includes(e.policyVersion)) inc.policyVersions.push(e.policyVersion)
  }

  /** Beyond capacity, the oldest resolved incidents go (open ones stay). */
  #trim (): void {
    while (this.#incidents.length > this.#capacity) {
      const i = this.#incidents.findIndex(x => x.status === 'resolved')
      if (i === -1) return
      this.#incidents.splice(i, 1)
    }
  }
}

/** What an event does to the route's conditions: `key` set (on) or cleared. */
function conditionChange (e: GatewayEvent): { key: string, on: boolean } | null {
  const u = e.upstream ?? ''
  switch (e.kind) {
    case 'shift.step': return { key: SHIFT, on: true }
    case 'shift.restored': return { key: SHIFT, on: false }
    case 'breaker.open': return { key: `breaker:${u}`, on: true }
    case 'breaker.close': return { key: `breaker:${u}`, on: false }
    case 'outlier.eject': return { key: `ejected:${u}`, on: true }
    case 'outlier.return': return { key: `ejected:${u}`, on: false }
    case 'probe.flip': return { key: `down:${u}`, on: e.after === 'unhealthy' }
    case 'overload.shedding': return { key: OVERLOAD, on: true }
    case 'overload.cleared': return { key: OVERLOAD, on: false }
    default: return null
  }
}
