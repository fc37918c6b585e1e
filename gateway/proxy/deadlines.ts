/**
 * Total-request deadlines on one shared timer instead of a timer per
 * request (STYLE.md #9). Precision is the tick (25 ms by default), which is
 * ample for deadlines measured in hundreds of milliseconds or more.
 */
import type { Clock } from '../core/clock.js'
import { LinkedList, type Linked } from '../core/linked-list.js'
import { SweepTimer } from '../core/sweep-timer.js'

/** A request with a deadline; it carries its own list links (see core/linked-list.ts). */
export interface Deadline extends Linked {
  readonly deadlineAt: number
  expire (): void
}

export class DeadlineSweeper {
  readonly #entries = new LinkedList<Deadline>()
  readonly #clock: Clock
  readonly #timer: SweepTimer

  /** @param tickMs how often deadlines are checked. @default 25 */
  constructor (clock: Clock, tickMs = 25) {
    this.#clock = clock
    this.#timer = new SweepTimer(tickMs, () => this.sweep())
  }

  add (entry: Deadline): void {
    this.#entries.add(entry)
    this.#timer.start()
  }

  delete (entry: Deadline): void {
    this.#entries.delete(entry)
  }

  /** Expire everything due; stops the timer when nothing is left to watch. */
  sweep (): void {
    const now = this.#clock.now()
    for (const e of this.#entries) {
      if (e.deadlineAt <= now) {
        this.#entries.delete(e)
        e.expire()
      }
    }
    if (this.#entries.size === 0) this.#timer.stop()
  }

  close (): void {
    this.#timer.stop()
    this.#entries.clear()
  }
}
