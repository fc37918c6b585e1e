/**
 * Turns what the data plane recorded about refused requests into events,
 * off the hot path: `overload.shedding` when a route starts answering 503
 * GW_ERR_OVERLOADED (its admission gate) or GW_ERR_SHED (the gateway-wide
 * overload gate, by priority), `overload.cleared` once it has refused none
 * for SHEDDING_QUIET_MS, with how many it refused in between. Read on every
 * control tick from the route's response tally (the same counts as
 * /metrics).
 */
import type { EventDraft } from '../events/types.js'
import type { ControlRoute } from '../views/ports.js'
import { ERRORS } from '../core/errors.js'

/** A route that refused nothing for this long has stopped shedding. */
export const SHEDDING_QUIET_MS = 1000

const OVERLOADED = ERRORS.OVERLOADED.code
const SHED = ERRORS.SHED.code

interface Episode { startedAt: number, lastShedAt: number, base: number, seen: number }

export class SheddingWatch {
  readonly #seen = new Map<string, number>()
  readonly #episodes = new Map<string, Episode>()
  /** Per route, its GW_ERR_SHED count at the last tick (which gate started an episode). */
  readonly #priorityBase = new Map<string, number>()

  tick (routes: readonly ControlRoute[], now: number): EventDraft[] {
    const out: EventDraft[] = []
    const names = new Set<string>()
    for (const route of routes) {
      const name = route.config.name
      names.add(name)
      const errors = route.delivery.responses.errors
      const byGate = errors.get(OVERLOADED) ?? 0
      const byPriority = errors.get(SHED) ?? 0
      const refused = byGate + byPriority
      // Tallies start at 0 with the route, so a first sighting counts what it refused so far.
      const last = this.#seen.get(name) ?? 0
      this.#seen.set(name, refused)
      const ep = this.#episodes.get(name)
      if (refused > last) {
        if (ep === undefined) {
          this.#episodes.set(name, { startedAt: now, lastShedAt: now, base: last, seen: refused })
          out.push(this.#started(route, byPriority > (this.#priorityBase.get(name) ?? 0)))
        } else {
          ep.lastShedAt = now
          ep.seen = refused
        }
      } else if (ep !== undefined && now - ep.lastShedAt >= SHEDDING_QUIET_MS) {
        this.#episodes.delete(name)
        out.push({ kind: 'overload.cleared', route: name, before: 'shedding', after: 'admitting', measured: ep.seen - ep.base, enforced: true, detail: `${ep.seen - ep.base} requests refused over ${((ep.lastShedAt - ep.startedAt) / 1000).toFixed(1)} s; none for ${SHEDDING_QUIET_MS} ms` })
      }
      this.#priorityBase.set(name, byPriority)
    }
    for (const map of [this.#seen, this.#episodes, this.#priorityBase]) for (const name of map.keys()) if (!names.has(name)) map.delete(name)
    return out
  }

  #started (route: ControlRoute, byPriority: boolean): EventDraft {
    const name = route.config.name
    const gate = route.admission
    if (byPriority || gate === null) {
      return { kind: 'overload.shedding', route: name, before: 'admitting', after: 'shedding', enforced: true, detail: `the gateway is over its overload limit for ${route.config.priority}-priority traffic: refusing with 503 ${SHED}` }
    }
    const cfg = gate.config
    return { kind: 'overload.shedding', route: name, before: 'admitting', after: 'shedding', measured: gate.inflight, threshold: cfg.maxConcurrent, enforced: true, detail: `${gate.inflight} in flight (maxConcurrent ${cfg.maxConcurrent}), ${gate.waiting} waiting (queue ${cfg.queue}, timeout ${cfg.queueTimeoutMs} ms): refusing with 503 ${OVERLOADED}` }
  }
}
