/**
 * Recent events in a bounded ring, numbered, with subscribers for the
 * admin API's server-sent-events stream. Publishing never blocks or throws
 * into the caller (a slow or broken subscriber is dropped).
 */
import type { Clock } from '../core/clock.js'
import type { EventDraft, GatewayEvent } from './types.js'

export type EventSink = (draft: EventDraft) => void

export class EventLog {
  readonly #clock: Clock
  readonly #capacity: number
  readonly #ring: GatewayEvent[] = []
  readonly #subscribers = new Set<(e: GatewayEvent) => void>()
  #seq = 0
  #policyVersion: () => string

  /** @param capacity events kept for GET /events. @default 1000 */
  constructor (clock: Clock, policyVersion: () => string, capacity = 1000) {
    this.#clock = clock
    this.#policyVersion = policyVersion
    this.#capacity = capacity
  }

  readonly add: EventSink = (draft: EventDraft): void => {
    const event: GatewayEvent = { seq: ++this.#seq, at: new Date(this.#clock.wall()).toISOString(), t: Math.round(this.#clock.now()), policyVersion: this.#policyVersion(), ...draft }
    this.#ring.push(event)
    if (this.#ring.length > this.#capacity) this.#ring.shift()
    for (const fn of this.#subscribers) {
      try { fn(event) } catch { this.#subscribers.delete(fn) }
    }
  }

  /** Events with seq > since, oldest first. */
  since (since = 0, limit = this.#capacity): GatewayEvent[] {
    const out = this.#ring.filter(e => e.seq > since)
    return out.length > limit ? out.slice(out.length - limit) : out
  }

  get lastSeq (): number { return this.#seq }

  subscribe (fn: (e: GatewayEvent) => void): () => void {
    this.#subscribers.add(fn)
    return () => { this.#subscribers.delete(fn) }
  }
}
