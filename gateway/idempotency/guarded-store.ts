/**
 * A shared store (Redis) behind the route's storeUnavailable choice, with an
 * outbox for outcomes that could not be written:
 *
 * - begin/wait while the shared store is unavailable: `reject` rethrows
 *   StoreUnavailableError (the keyed request gets 503 and is not forwarded),
 *   `local` claims the key in this instance's memory store instead (tokens
 *   prefixed `L:`, so complete/release go back to the store that claimed);
 * - complete/release that fail (Redis lost while the request was upstream)
 *   go to an outbox retried every second until Redis is back, so the key
 *   ends as "done" with its real outcome instead of staying "in flight"
 *   until its TTL; while it waits there, a repeat on this instance replays
 *   it from the outbox.
 */
import { StoreUnavailableError } from './errors.js'
import type { BeginResult, IdempotencyStore, Outcome } from './types.js'

const LOCAL = 'L:'
const OUTBOX_MAX = 10_000

interface Pending { readonly outcome: Outcome | null, readonly token: string | undefined }

export class GuardedStore implements IdempotencyStore {
  readonly #shared: IdempotencyStore
  readonly #local: IdempotencyStore | null
  readonly #outbox = new Map<string, Pending>()
  readonly #onLost: (n: number) => void
  #timer: NodeJS.Timeout | null = null

  /** @param onLost told when outbox entries are dropped (full), for the log. */
  constructor (shared: IdempotencyStore, local: IdempotencyStore | null, onLost: (n: number) => void = () => {}) {
    this.#shared = shared
    this.#local = local
    this.#onLost = onLost
  }

  get pending (): number { return this.#outbox.size }

  async begin (key: string, fingerprint: string): Promise<BeginResult> {
    const queued = this.#outbox.get(key)
    if (queued?.outcome != null) return queued.token === undefined || queued.token.startsWith(`${fingerprint}.`) ? { state: 'done', outcome: queued.outcome } : { state: 'mismatch' }
    try {
      return await this.#shared.begin(key, fingerprint)
    } catch (err) {
      // Only an outage falls back: a record that cannot be read may be a request that already ran.
      if (!(err instanceof StoreUnavailableError) || err.unreadable || this.#local === null) throw err
      const r = await this.#local.begin(key, fingerprint)
      return r.state === 'owner' ? { state: 'owner', token: LOCAL + r.token } : r
    }
  }

  async complete (key: string, outcome: Outcome, token?: string): Promise<void> {
    if (token?.startsWith(LOCAL) === true) return await (this.#local as IdempotencyStore).complete(key, outcome, token.slice(LOCAL.length))
    try {
      await this.#shared.complete(key, outcome, token)
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err
      this.#queue(key, { outcome, token })
    }
  }

  async release (key: string, token?: string): Promise<void> {
    if (token?.startsWith(LOCAL) === true) return await (this.#local as IdempotencyStore).release(key, token.slice(LOCAL.length))
    try {
      await this.#shared.release(key, token)
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err
      this.#queue(key, { outcome: null, token })
    }
  }

  async wait (key: string, ms: number): Promise<Outcome | 'released' | 'timeout'> {
    const queued = this.#outbox.get(key)
    if (queued !== undefined) return queued.outcome ?? 'released'
    try {
      return await this.#shared.wait(key, ms)
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || err.unreadable || this.#local === null) throw err
      return await this.#local.wait(key, ms)
    }
  }

  async close (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    await this.#flush()
    await Promise.all([this.#shared.close(), this.#local?.close()])
  }

  #queue (key: string, p: Pending): void {
    this.#outbox.delete(key)
    this.#outbox.set(key, p)
    if (this.#outbox.size > OUTBOX_MAX) {
      const oldest = this.#outbox.keys().next().value as string
      this.#outbox.delete(oldest)
      this.#onLost(1)
    }
    if (this.#timer === null) {
      this.#timer = setInterval(() => { void this.#flush() }, 1000)
      this.#timer.unref()
    }
  }

  async #flush (): Promise<void> {
    for (const [key, p] of [...this.#outbox]) {
      try {
        if (p.outcome === null) await this.#shared.release(key, p.token)
        else await this.#shared.complete(key, p.outcome, p.token)
        if (this.#outbox.get(key) === p) this.#outbox.delete(key)
      } catch {
        return // still away: try again on the next tick
      }
    }
    if (this.#outbox.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer)
      this.#timer = null
    }
  }
}
