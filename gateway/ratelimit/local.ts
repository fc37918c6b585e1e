/**
 * Local (per process) rate-limit state: one TAT per key in a Map, bounded.
 * A key whose TAT has passed holds no information (its bucket is full), so
 * when the map reaches its bound the passed keys go first; if every key is
 * still live, the oldest inserted goes (it is refilled soonest on average).
 */
import { gcra, type GcraVerdict } from './gcra.js'

export const MAX_LOCAL_KEYS = 100_000

export class LocalBuckets {
  readonly #tat = new Map<string, number>()
  readonly #max: number

  constructor (max = MAX_LOCAL_KEYS) {
    this.#max = max
  }

  get size (): number {
    return this.#tat.size
  }

  take (key: string, now: number, limit: number, windowMs: number): GcraVerdict {
    const v = gcra(this.#tat.get(key), now, limit, windowMs)
    if (v.allowed) {
      if (!this.#tat.has(key) && this.#tat.size >= this.#max) this.#evict(now)
      this.#tat.set(key, v.tat)
    }
    return v
  }

  #evict (now: number): void {
    for (const [k, tat] of this.#tat) if (tat <= now) this.#tat.delete(k)
    if (this.#tat.size < this.#max) return
    const oldest = this.#tat.keys().next()
    if (oldest.done !== true) this.#tat.delete(oldest.value)
  }
}
