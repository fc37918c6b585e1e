/**
 * A worker's shared state when the policy has no Redis: idempotency keys and
 * the fleet bus are held by the primary process, reached over IPC, so the
 * workers of one process act as one (never silently per worker).
 */
import type { Clock } from '../core/clock.js'
import type { IdempotencyConfig } from '../policy/snapshot.js'
import type { BeginResult, IdempotencyStore, Outcome } from '../idempotency/types.js'
import { StoreUnavailableError } from '../idempotency/errors.js'
import type { FleetBus, ShareReport } from '../fleet/bus.js'
import { ShareSync } from '../fleet/share-sync.js'
import { memoryState, type SharedState } from '../app/shared-state.js'
import { isMessage, type StoreOp, type ToPrimary, type ToWorker } from './protocol.js'

type Send = (m: ToPrimary) => void

/** Calls to the primary, answered by id. */
export class PrimaryLink {
  readonly #send: Send
  readonly #pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  readonly #fleet: Array<(r: readonly ShareReport[]) => void> = []
  #ids = 0

  constructor (send: Send) {
    this.#send = send
  }

  /** Feed every message from the primary here; returns false for those it does not handle. */
  receive (m: unknown): boolean {
    if (!isMessage(m)) return false
    const msg = m as ToWorker
    if (msg.t === 'answer') {
      const p = this.#pending.get(msg.id)
      if (p === undefined) return true
      this.#pending.delete(msg.id)
      clearTimeout(p.timer)
      if (msg.error !== undefined) p.reject(new StoreUnavailableError(msg.error))
      else p.resolve(msg.value)
      return true
    }
    if (msg.t === 'fleet') {
      for (const fn of this.#fleet) fn(msg.reports)
      return true
    }
    return false
  }

  async store (op: StoreOp, timeoutMs: number): Promise<unknown> {
    const id = ++this.#ids
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new StoreUnavailableError('the primary process did not answer in time'))
      }, timeoutMs)
      timer.unref()
      this.#pending.set(id, { resolve, reject, timer })
      try { this.#send({ t: 'store', id, store: op }) } catch {
        clearTimeout(timer)
        this.#pending.delete(id)
        reject(new StoreUnavailableError('the primary process is gone'))
      }
    })
  }

  onFleet (fn: (r: readonly ShareReport[]) => void): void { this.#fleet.push(fn) }
  publish (reports: readonly ShareReport[]): void {
    try { this.#send({ t: 'fleet', reports }) } catch { /* primary gone: local decisions only */ }
  }
}

const OP_TIMEOUT_MS = 2000

class IpcStore implements IdempotencyStore {
  readonly #link: PrimaryLink
  readonly #base: Omit<StoreOp, 'op' | 'args'>

  constructor (link: PrimaryLink, route: string, cfg: IdempotencyConfig) {
    this.#link = link
    this.#base = { route, ttlMs: cfg.ttlMs, maxKeys: cfg.maxKeys }
  }

  async begin (key: string, fp: string): Promise<BeginResult> { return await this.#link.store({ ...this.#base, op: 'begin', args: [key, fp] }, OP_TIMEOUT_MS) as BeginResult }
  async complete (key: string, outcome: Outcome, token?: string): Promise<void> { await this.#link.store({ ...this.#base, op: 'complete', args: [key, outcome, token] }, OP_TIMEOUT_MS) }
  async release (key: string, token?: string): Promise<void> { await this.#link.store({ ...this.#base, op: 'release', args: [key, token] }, OP_TIMEOUT_MS) }
  async wait (key: string, ms: number): Promise<Outcome | 'released' | 'timeout'> {
    return await this.#link.store({ ...this.#base, op: 'wait', args: [key, ms] }, ms + OP_TIMEOUT_MS) as Outcome | 'released' | 'timeout'
  }

  async close (): Promise<void> {}
}

export function workerState (link: PrimaryLink, clock: Clock, instance: string, syncIntervalMs: number, staleAfterMs: number): SharedState {
  const bus: FleetBus = {
    publish: reports => link.publish(reports),
    onReports: fn => link.onFleet(fn),
    close: async () => {}
  }
  return {
    ...memoryState(clock, instance),
    storeFactory: (route, cfg) => new IpcStore(link, route, cfg),
    fleet: new ShareSync({ instance, bus, now: () => clock.now(), syncIntervalMs, staleAfterMs })
  }
}
