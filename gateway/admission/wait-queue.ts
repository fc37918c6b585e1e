/**
 * Requests waiting for an admission slot, shared by the route gate
 * (gate.ts) and the overload gate (overload.ts). Waiters sit in an
 * intrusive list (core/linked-list.ts) in arrival order, so the head is the
 * oldest, and one shared sweep (core/sweep-timer.ts), running only while
 * someone waits, times them out: no timer per request.
 */
import type { Clock } from '../core/clock.js'
import { LinkedList, type Linked } from '../core/linked-list.js'
import { SweepTimer } from '../core/sweep-timer.js'

/** A request waiting for a slot. `grant` runs once a slot is its; `expire` when its time is up. */
export class Waiter implements Linked {
  listPrev: Linked | null = null
  listNext: Linked | null = null
  listOwner: LinkedList<Linked> | null = null
  readonly deadline: number
  readonly grant: () => void
  readonly expire: () => void

  constructor (deadline: number, grant: () => void, expire: () => void) {
    this.deadline = deadline
    this.grant = grant
    this.expire = expire
  }
}

export class WaitQueue<W extends Waiter> {
  readonly #list = new LinkedList<W>()
  readonly #clock: Clock
  readonly #sweep: SweepTimer
  readonly #expired: (w: W) => void

  /** `expired` is told of each waiter the sweep took out (its deadline passed), before its own `expire` runs. */
  constructor (clock: Clock, tickMs: number, expired: (w: W) => void) {
    this.#clock = clock
    this.#expired = expired
    this.#sweep = new SweepTimer(tickMs, () => { this.#expire() })
  }

  get size (): number {
    return this.#list.size
  }

  /** The oldest waiter, or null. */
  get first (): W | null {
    return this.#list.first
  }

  add (w: W): void {
    this.#list.add(w)
    this.#sweep.start()
  }

  /** Takes `w` out (granted, refused, or its client left); false when it was not waiting here. */
  delete (w: W): boolean {
    const had = this.#list.delete(w)
    if (this.#list.size === 0) this.#sweep.stop()
    return had
  }

  /** Oldest first; deleting the current waiter while iterating is safe. */
  [Symbol.iterator] (): Iterator<W> {
    return this.#list[Symbol.iterator]()
  }

  close (): void {
    this.#sweep.stop()
  }

  #expire (): void {
    const now = this.#clock.now()
    for (let w = this.#list.first; w !== null && w.deadline <= now; w = this.#list.first) {
      this.delete(w)
      this.#expired(w)
      w.expire()
    }
  }
}
