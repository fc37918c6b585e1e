/**
 * The primary process's side of the shared state: one memory idempotency
 * store per route for all workers, the fleet relay (a worker's report goes
 * to every other worker), and the events of all workers in one log.
 */
import type { Clock } from '../core/clock.js'
import { MemoryIdempotencyStore } from '../idempotency/memory-store.js'
import type { IdempotencyStore, Outcome } from '../idempotency/types.js'
import type { EventLog } from '../events/log.js'
import type { StoreOp, ToPrimary, ToWorker } from './protocol.js'

export interface HubWorker {
  readonly id: number
  send (m: ToWorker): void
}

export class Hub {
  readonly #clock: Clock
  readonly #events: EventLog
  readonly #stores = new Map<string, { sig: string, store: IdempotencyStore }>()

  constructor (clock: Clock, events: EventLog) {
    this.#clock = clock
    this.#events = events
  }

  /** A message from `from`; `all` are the workers alive now. */
  receive (from: HubWorker, m: ToPrimary, all: Iterable<HubWorker>): void {
    if (m.t === 'store') {
      this.#store(m.store).then(value => { safeSend(from, { t: 'answer', id: m.id, value }) }, (err: unknown) => {
        safeSend(from, { t: 'answer', id: m.id, value: null, error: err instanceof Error ? err.message : 'store failed' })
      })
    } else if (m.t === 'fleet') {
      for (const w of all) if (w.id !== from.id) safeSend(w, { t: 'fleet', reports: m.reports })
    } else if (m.t === 'event') {
      this.#events.add({ ...m.event, detail: `${m.event.detail} [worker ${from.id}]` })
    }
  }

  async close (): Promise<void> {
    await Promise.all([...this.#stores.values()].map(async s => await s.store.close()))
  }

  async #store (op: StoreOp): Promise<unknown> {
    const sig = `${op.ttlMs}|${op.maxKeys}`
    let entry = this.#stores.get(op.route)
    if (entry === undefined || entry.sig !== sig) {
      void entry?.store.close()
      entry = { sig, store: new MemoryIdempotencyStore({ clock: this.#clock, ttlMs: op.ttlMs, maxKeys: op.maxKeys }) }
      this.#stores.set(op.route, entry)
    }
    const s = entry.store
    const a = op.args
    switch (op.op) {
      case 'begin': return await s.begin(a[0] as string, a[1] as string)
      case 'complete': return await s.complete(a[0] as string, a[1] as Outcome, a[2] as string | undefined)
      case 'release': return await s.release(a[0] as string, a[1] as string | undefined)
      case 'wait': return await s.wait(a[0] as string, Math.min(Number(a[1]), 600_000))
    }
  }
}

function safeSend (w: HubWorker, m: ToWorker): void {
  try { w.send(m) } catch { /* the worker is gone; its requests died with it */ }
}
