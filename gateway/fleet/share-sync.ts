/**
 * Fleet-wide shift: every instance runs its own shift controller on its own
 * signal, publishes the share it decided, and applies the largest share
 * decided by any instance heard from within staleAfter (its own included).
 *
 * Why "max of fresh decisions" and not a leader:
 * - it reacts as fast as the fastest instance: the first to see the primary
 *   slow moves everybody within one message (~ms) plus one control tick;
 * - it cannot oscillate: each controller keeps its own hysteresis and dwell
 *   on its own signal, and max() of such decisions only changes when one of
 *   them does; no instance feeds the merged value back into its controller;
 * - the fleet ramps back together, when the last instance that still sees
 *   the primary slow lets go (a cautious merge: a heal is never premature);
 * - nothing to elect, no lease to lose: with Redis away peers go stale after
 *   staleAfter and each instance falls back to its own decision, then
 *   rejoins as soon as reports flow again.
 * The price: one instance with a bad path to the primary moves the fleet's
 * share too. That is the safe side for payments, and /status shows which
 * instance holds the share up.
 */
import type { FleetBus, ShareReport } from './bus.js'
import type { ShareMerge, SignalSummary } from '../control/loop.js'

export interface ShareSyncOptions {
  readonly instance: string
  readonly bus: FleetBus
  readonly now: () => number
  readonly syncIntervalMs: number
  readonly staleAfterMs: number
}

interface Heard { readonly report: ShareReport, readonly at: number }

export interface PeerView {
  readonly instance: string
  readonly share: number
  readonly phase: string
  readonly primaryMs: number | null
  readonly ageMs: number
}

export class ShareSync implements ShareMerge {
  readonly #o: ShareSyncOptions
  /** route → instance → last report. */
  readonly #peers = new Map<string, Map<string, Heard>>()
  readonly #own = new Map<string, ShareReport>()
  #lastPublish = -Infinity

  constructor (o: ShareSyncOptions) {
    this.#o = o
    o.bus.onReports(reports => {
      const at = o.now()
      for (const r of reports) {
        // A report is data from the network: checked before it is read, and
        // kept only for a route this instance shifts (no memory for junk names).
        if (!validReport(r) || r.instance === o.instance || !this.#own.has(r.route)) continue
        let m = this.#peers.get(r.route)
        if (m === undefined) {
          m = new Map()
          this.#peers.set(r.route, m)
        }
        if (m.size >= MAX_PEERS && !m.has(r.instance)) continue
        m.set(r.instance, { report: r, at })
      }
    })
  }

  merge (route: string, local: number, summary: SignalSummary, now: number): number {
    const prev = this.#own.get(route)
    const report: ShareReport = { instance: this.#o.instance, route, share: local, phase: summary.phase, primaryMs: summary.primaryMs }
    this.#own.set(route, report)
    // A change goes out at once (that is what moves the fleet within a tick);
    // the rest is the periodic refresh that keeps this instance fresh.
    if (prev === undefined || prev.share !== local) this.#publish(now, [report])
    else if (now - this.#lastPublish >= this.#o.syncIntervalMs) this.#publish(now, [...this.#own.values()])
    let share = local
    const peers = this.#peers.get(route)
    if (peers !== undefined) {
      for (const [id, h] of peers) {
        if (now - h.at > this.#o.staleAfterMs) peers.delete(id)
        else if (h.report.share > share) share = h.report.share
      }
    }
    return share
  }

  /** Routes no longer in the policy stop being published, and their peers are forgotten. */
  retain (routes: ReadonlySet<string>): void {
    for (const name of this.#own.keys()) if (!routes.has(name)) this.#own.delete(name)
    for (const name of this.#peers.keys()) if (!routes.has(name)) this.#peers.delete(name)
  }

  /** Fresh peers of a route, for /status. */
  peers (route: string, now: number): PeerView[] {
    const out: PeerView[] = []
    for (const h of this.#peers.get(route)?.values() ?? []) {
      const ageMs = now - h.at
      if (ageMs <= this.#o.staleAfterMs) out.push({ instance: h.report.instance, share: h.report.share, phase: h.report.phase, primaryMs: h.report.primaryMs, ageMs: Math.round(ageMs) })
    }
    return out
  }

  #publish (now: number, reports: ShareReport[]): void {
    this.#lastPublish = now
    this.#o.bus.publish(reports)
  }
}

/** Instances heard of per route at most (a fleet is far smaller; junk beyond it is dropped). */
const MAX_PEERS = 256
const MAX_ID = 200

/** A peer's report is data from the network: only well-formed ones count. */
function validReport (r: ShareReport): boolean {
  return typeof r === 'object' && r !== null && typeof r.instance === 'string' && r.instance.length <= MAX_ID && typeof r.route === 'string' &&
    typeof r.share === 'number' && r.share >= 0 && r.share <= 1 && typeof r.phase === 'string' &&
    (r.primaryMs === null || typeof r.primaryMs === 'number')
}
