/**
 * The gateway-wide overload gate: one count of requests in flight over all
 * routes, and a priority per route. A class may only start a request while
 * the count is below its share of the limit (`shedAt`): low-priority
 * traffic is refused first, at half the limit by default, and critical
 * traffic (payments, checkout) keeps the top of the capacity for itself,
 * in the spirit of Envoy's overload manager and Netflix's partitioned
 * concurrency limiter. No queue: a refused request gets 503 GW_ERR_SHED at
 * once. Kept across reloads (requests in flight still count).
 */
import type { OverloadConfig, Priority } from '../policy/snapshot.js'

export const PRIORITIES: readonly Priority[] = ['critical', 'high', 'normal', 'low']

export class OverloadGate {
  #config: OverloadConfig | null = null
  /** Per priority, the in-flight count at which it is refused (limit × shedAt). */
  #ceiling: Record<Priority, number> = { critical: Infinity, high: Infinity, normal: Infinity, low: Infinity }
  inflight = 0
  readonly admitted: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 }
  readonly refused: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 }

  get config (): OverloadConfig | null {
    return this.#config
  }

  get active (): boolean {
    return this.#config !== null
  }

  configure (config: OverloadConfig | null): void {
    this.#config = config
    for (const p of PRIORITIES) this.#ceiling[p] = config === null ? Infinity : Math.max(1, Math.floor(config.maxConcurrent * config.shedAt[p]))
  }

  /** The in-flight count from which `priority` is refused. */
  ceiling (priority: Priority): number {
    return this.#ceiling[priority]
  }

  tryEnter (priority: Priority): boolean {
    if (this.inflight >= this.#ceiling[priority]) {
      this.refused[priority]++
      return false
    }
    this.inflight++
    this.admitted[priority]++
    return true
  }

  readonly leave = (): void => {
    this.inflight--
  }
}
