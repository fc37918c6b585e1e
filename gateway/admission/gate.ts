/**
 * One route's admission gate: at most `maxConcurrent` requests in flight,
 * up to `queue` more waiting (first come, first served) at most
 * `queueTimeoutMs`, the rest refused. Recorded on the hot path as plain
 * counters; the control loop reads them to report shedding (events), and
 * /status and /metrics read them as they are.
 *
 * Waiters are in a WaitQueue (wait-queue.ts): oldest first, timed out by
 * one shared sweep. Kept across reloads by route name (AdmissionRegistry), so requests in
 * flight when the policy changes still count against the new limit.
 */
import type { Clock } from '../core/clock.js'
import type { AdmissionConfig, TenantCapConfig } from '../policy/snapshot.js'
import { TenantCap } from './tenant-cap.js'
import { WaitQueue, Waiter } from './wait-queue.js'

export { Waiter }

export type Refusal = 'queueFull' | 'queueTimeout'

export class AdmissionGate {
  readonly route: string
  readonly #clock: Clock
  #config: AdmissionConfig
  readonly #waiting: WaitQueue<Waiter>
  inflight = 0
  /** The limit in force: maxConcurrent, or less while an adaptive limit (control/adaptive-limit.ts) holds it lower. */
  limit: number
  /** Since the control plane last read them: responses ended, the time they held their slot, the most in flight. */
  heldCount = 0
  heldMs = 0
  peakInflight = 0
  /** Requests admitted (at once or after waiting). */
  admitted = 0
  /** Requests that had to wait (admitted later or not). */
  queued = 0
  readonly refused: Record<Refusal, number> = { queueFull: 0, queueTimeout: 0 }

  constructor (route: string, config: AdmissionConfig, clock: Clock) {
    this.route = route
    this.#config = config
    this.limit = config.maxConcurrent
    this.#clock = clock
    this.#waiting = new WaitQueue(clock, Math.max(5, Math.min(50, Math.floor(config.queueTimeoutMs / 4))), () => { this.refused.queueTimeout++ })
  }

  get config (): AdmissionConfig {
    return this.#config
  }

  get waiting (): number {
    return this.#waiting.size
  }

  /** A reload: the new limits apply from now on (a raised limit lets waiters in at once). */
  configure (config: AdmissionConfig): void {
    this.#config = config
    this.limit = config.adaptive === null ? config.maxConcurrent : Math.max(config.adaptive.minLimit, Math.min(this.limit, config.maxConcurrent))
    this.#admitWaiting()
    while (this.#waiting.size > config.queue) {
      const w = this.#waiting.first as Waiter
      this.#waiting.delete(w)
      this.refused.queueFull++
      w.expire()
    }
  }

  /** A slot now, when one is free and nobody waits before this request. */
  tryEnter (): boolean {
    if (this.inflight >= this.limit || this.#waiting.size > 0) return false
    if (++this.inflight > this.peakInflight) this.peakInflight = this.inflight
    this.admitted++
    return true
  }

  /** The control plane sets a new limit (adaptive); a raised one lets waiters in at once. */
  setLimit (limit: number): void {
    this.limit = limit
    this.#admitWaiting()
  }

  /** Queues a request that got no slot; false (refused, counted) when the queue is full. */
  wait (grant: () => void, expire: () => void): Waiter | null {
    if (this.#waiting.size >= this.#config.queue) {
      this.refused.queueFull++
      return null
    }
    const w = new Waiter(this.#clock.now() + this.#config.queueTimeoutMs, grant, expire)
    this.#waiting.add(w)
    this.queued++
    return w
  }

  /** The client of a waiting request went away: it leaves the queue, uncounted. */
  cancel (w: Waiter): void {
    this.#waiting.delete(w)
  }

  /** An admitted request's response ended: its slot goes to the oldest waiter. */
  readonly leave = (heldMs: number): void => {
    this.inflight--
    this.heldCount++
    this.heldMs += heldMs
    this.#admitWaiting()
  }

  close (): void {
    this.#waiting.close()
  }

  #admitWaiting (): void {
    while (this.inflight < this.limit) {
      const w = this.#waiting.first
      if (w === null) break
      this.#waiting.delete(w)
      if (++this.inflight > this.peakInflight) this.peakInflight = this.inflight
      this.admitted++
      w.grant()
    }
  }
}

/** Gates by route name, kept across reloads. */
export class AdmissionRegistry {
  readonly #clock: Clock
  readonly #gates = new Map<string, AdmissionGate>()
  readonly #tenantCaps = new Map<string, TenantCap>()

  constructor (clock: Clock) {
    this.#clock = clock
  }

  /**
   * The route's gate with `config` applied, or null (and none kept) without
   * an admission block. Requests in flight in a dropped gate release into
   * it, and nothing else reads it.
   */
  get (route: string, config: AdmissionConfig | null): AdmissionGate | null {
    return kept(this.#gates, route, config, c => new AdmissionGate(route, c, this.#clock))
  }

  /** The route's per-tenant share with `config` applied, or null (and none kept). */
  tenantCap (route: string, config: TenantCapConfig | null): TenantCap | null {
    return kept(this.#tenantCaps, route, config, c => new TenantCap(c))
  }

  retain (routes: ReadonlySet<string>): void {
    for (const name of this.#tenantCaps.keys()) {
      if (!routes.has(name)) this.#tenantCaps.delete(name)
    }
    for (const [name, g] of this.#gates) {
      if (routes.has(name)) continue
      g.close()
      this.#gates.delete(name)
    }
  }

  close (): void {
    for (const g of this.#gates.values()) g.close()
  }
}

/** The entry for `route` in `map` reconfigured (or made), or dropped when `config` is null. */
function kept<C, T extends { configure: (config: C) => void }> (map: Map<string, T>, route: string, config: C | null, make: (config: C) => T): T | null {
  const had = map.get(route)
  if (config === null) {
    map.delete(route)
    return null
  }
  if (had === undefined) {
    const made = make(config)
    map.set(route, made)
    return made
  }
  had.configure(config)
  return had
}
