/**
 * The gateway-wide overload gate: one count of requests in flight over all
 * routes, and a priority per route. A class may only start a request while
 * the count is below its share of the limit (`shedAt`): low-priority
 * traffic is refused first, at half the limit by default, and critical
 * traffic (payments, checkout) keeps the top of the capacity for itself,
 * in the spirit of Envoy's overload manager and Netflix's partitioned
 * concurrency limiter. Low and normal requests get 503 GW_ERR_SHED at once;
 * critical and high ones at their ceiling may wait a little (overload.queue,
 * overload.queueTimeout) for a slot, so a burst of payments is not refused
 * while low-priority requests are finishing. Kept across reloads (requests
 * in flight still count).
 */
import type { Clock } from '../core/clock.js'
import type { OverloadConfig, Priority } from '../policy/snapshot.js'
import { WaitQueue, Waiter } from './wait-queue.js'

/** A critical or high request waiting for a slot of the overload gate. */
class PriorityWaiter extends Waiter {
  readonly priority: Priority

  constructor (priority: Priority, deadline: number, grant: () => void, expire: () => void) {
    super(deadline, grant, expire)
    this.priority = priority
  }
}

export const PRIORITIES: readonly Priority[] = ['critical', 'high', 'normal', 'low']

export class OverloadGate {
  readonly #clock: Clock
  readonly #waiting: WaitQueue<PriorityWaiter>
  #config: OverloadConfig | null = null
  /** Per priority, the in-flight count at which it is refused (limit × shedAt). */
  #ceiling: Record<Priority, number> = { critical: Infinity, high: Infinity, normal: Infinity, low: Infinity }
  inflight = 0
  readonly admitted: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 }
  readonly refused: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 }
  /** Critical and high requests that had to wait. */
  queued = 0

  constructor (clock: Clock) {
    this.#clock = clock
    this.#waiting = new WaitQueue<PriorityWaiter>(clock, 10, w => { this.refused[w.priority]++ })
  }

  get waiting (): number {
    return this.#waiting.size
  }

  get config (): OverloadConfig | null {
    return this.#config
  }

  configure (config: OverloadConfig | null): void {
    this.#config = config
    for (const p of PRIORITIES) this.#ceiling[p] = config === null ? Infinity : Math.max(1, Math.floor(config.maxConcurrent * config.shedAt[p]))
  }

  /** The in-flight count from which `priority` is refused. */
  ceiling (priority: Priority): number {
    return this.#ceiling[priority]
  }

  /** A slot now, or false: the caller may wait (critical, high) or sheds. Nobody waiting jumps no one. */
  tryEnter (priority: Priority): boolean {
    if (this.inflight >= this.#ceiling[priority] || (this.#waiting.size > 0 && (priority === 'critical' || priority === 'high'))) return false
    this.inflight++
    this.admitted[priority]++
    return true
  }

  /** Counts a refusal (the caller answers 503 GW_ERR_SHED). */
  refuse (priority: Priority): void {
    this.refused[priority]++
  }

  /** Whether a refused request of `priority` may wait for a slot. */
  mayWait (priority: Priority): boolean {
    const c = this.#config
    return c !== null && c.queue > 0 && (priority === 'critical' || priority === 'high') && this.#waiting.size < c.queue
  }

  /** Queues a critical or high request (after mayWait); `expire` runs when queueTimeout passes first. */
  wait (priority: Priority, grant: () => void, expire: () => void): Waiter {
    const w = new PriorityWaiter(priority, this.#clock.now() + (this.#config?.queueTimeoutMs ?? 0), grant, expire)
    this.#waiting.add(w)
    this.queued++
    return w
  }

  cancel (w: Waiter): void {
    this.#waiting.delete(w as PriorityWaiter)
  }

  readonly leave = (_heldMs: number): void => {
    this.inflight--
    if (this.#waiting.size > 0) this.#admitWaiting()
  }

  close (): void {
    this.#waiting.close()
  }

  /** Oldest first, each waiter whose priority has room now. */
  #admitWaiting (): void {
    for (const w of this.#waiting) {
      if (this.inflight >= this.#ceiling[w.priority]) continue
      this.#waiting.delete(w)
      this.inflight++
      this.admitted[w.priority]++
      w.grant()
    }
  }
}
