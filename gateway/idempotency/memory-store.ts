/**
 * The in-memory idempotency store: one process, bounded, TTL'd.
 *
 * Keys live in one of two Maps, `#inFlight` (ordered by begin) and `#done`
 * (ordered by completion). Because the clock is monotonic and the TTL is one
 * number, each Map is also ordered by expiry, so the sweep stops at the first
 * live entry and "evict the oldest done key" is the first key of `#done`: O(1),
 * and it is the key that would expire soonest anyway.
 *
 * Every method does its check-and-set without an `await` in between, so
 * `begin` is atomic within the event loop (the contract's one hard rule).
 */
import type { Clock } from '../core/clock.js'
import type { BeginResult, IdempotencyStore, Outcome } from './types.js'

type WaitResult = Outcome | 'released' | 'timeout'

interface Waiter {
  readonly resolve: (result: WaitResult) => void
  readonly timer: NodeJS.Timeout
}

interface InFlight {
  readonly fp: string
  readonly token: string
  readonly createdAt: number
  readonly waiters: Set<Waiter>
}

interface Done {
  /** null when complete() came for a key the store no longer had (see complete()). */
  readonly fp: string | null
  readonly outcome: Outcome
  readonly expiresAt: number
}

export interface MemoryIdempotencyStoreOptions {
  readonly clock: Clock
  /** How long a completed key is replayed, counted from completion; also the longest a key may stay in flight. */
  readonly ttlMs: number
  /** Most keys kept (in flight and done together). */
  readonly maxKeys: number
  /** @default 1000 */
  readonly sweepEveryMs?: number
}

export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #clock: Clock
  readonly #ttlMs: number
  readonly #maxKeys: number
  readonly #sweepEveryMs: number
  readonly #inFlight = new Map<string, InFlight>()
  readonly #done = new Map<string, Done>()
  #sweeper: NodeJS.Timeout | undefined
  #closed = false
  #tokens = 0

  constructor (opts: MemoryIdempotencyStoreOptions) {
    if (!(opts.ttlMs > 0)) throw new RangeError(`ttlMs must be > 0, got ${opts.ttlMs}`)
    if (!Number.isInteger(opts.maxKeys) || opts.maxKeys < 1) throw new RangeError(`maxKeys must be an integer >= 1, got ${opts.maxKeys}`)
    const sweepEveryMs = opts.sweepEveryMs ?? 1000
    if (!(sweepEveryMs > 0)) throw new RangeError(`sweepEveryMs must be > 0, got ${sweepEveryMs}`)
    this.#clock = opts.clock
    this.#ttlMs = opts.ttlMs
    this.#maxKeys = opts.maxKeys
    this.#sweepEveryMs = sweepEveryMs
  }

  /** Keys held now (in flight and done), expired ones not yet swept included. */
  get size (): number { return this.#inFlight.size + this.#done.size }

  async begin (key: string, fingerprint: string): Promise<BeginResult> {
    this.#startSweeper()
    const now = this.#clock.now()
    const running = this.#liveInFlight(key, now)
    if (running !== undefined) return running.fp === fingerprint ? { state: 'in-flight' } : { state: 'mismatch' }
    const done = this.#liveDone(key, now)
    if (done !== undefined) {
      // fp null: the owner's entry was evicted before it completed. A retry with
      // this key is almost surely the same client repeating the same request, and
      // replaying beats running it twice (the very thing this store prevents).
      return done.fp === null || done.fp === fingerprint ? { state: 'done', outcome: done.outcome } : { state: 'mismatch' }
    }
    this.#makeRoom()
    const token = `${fingerprint}.${++this.#tokens}`
    this.#inFlight.set(key, { fp: fingerprint, token, createdAt: now, waiters: new Set() })
    return { state: 'owner', token }
  }

  async complete (key: string, outcome: Outcome, token?: string): Promise<void> {
    this.#startSweeper()
    const running = this.#inFlight.get(key)
    // Fencing: a stale owner (its claim evicted or expired, the key since
    // claimed again) must not overwrite the newer owner's claim.
    if (token !== undefined && running !== undefined && running.token !== token) return
    if (token !== undefined && running === undefined && this.#done.has(key)) return
    let fp: string | null = token === undefined ? null : token.slice(0, token.lastIndexOf('.'))
    if (running !== undefined) {
      this.#inFlight.delete(key)
      fp = running.fp
    } else {
      const prior = this.#done.get(key)
      if (prior !== undefined) {
        // A second complete(): re-inserted below so #done stays ordered by expiry.
        this.#done.delete(key)
        fp = prior.fp
      } else {
        // Evicted (or never begun): keep the outcome anyway so a retry replays it.
        this.#makeRoom()
      }
    }
    this.#done.set(key, { fp, outcome, expiresAt: this.#clock.now() + this.#ttlMs })
    if (running !== undefined) settleAll(running, outcome)
  }

  async release (key: string, token?: string): Promise<void> {
    if (token !== undefined && this.#inFlight.get(key)?.token !== token) return
    this.#done.delete(key)
    this.#dropInFlight(key)
  }

  async wait (key: string, ms: number): Promise<WaitResult> {
    if (this.#closed) return 'released'
    const now = this.#clock.now()
    const done = this.#liveDone(key, now)
    if (done !== undefined) return done.outcome
    const running = this.#liveInFlight(key, now)
    if (running === undefined) return 'released'
    return await new Promise<WaitResult>(resolve => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          running.waiters.delete(waiter)
          resolve('timeout')
        }, ms)
      }
      // A waiter must never keep the process alive on its own (shutdown would hang).
      waiter.timer.unref()
      running.waiters.add(waiter)
    })
  }

  /**
   * Drops expired done keys and in-flight keys older than the TTL (a crashed
   * owner must not block its key forever; their waiters get 'released').
   * Runs every `sweepEveryMs`; public so tests can drive it with a ManualClock.
   */
  sweep (): void {
    const now = this.#clock.now()
    // Both Maps are ordered by expiry (see the header), so stop at the first live one.
    for (const [key, entry] of this.#done) {
      if (now < entry.expiresAt) break
      this.#done.delete(key)
    }
    for (const [key, entry] of this.#inFlight) {
      if (now < entry.createdAt + this.#ttlMs) break
      this.#dropInFlight(key)
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper)
    this.#sweeper = undefined
    for (const entry of this.#inFlight.values()) settleAll(entry, 'released')
  }

  #startSweeper (): void {
    if (this.#sweeper !== undefined || this.#closed) return
    this.#sweeper = setInterval(() => { this.sweep() }, this.#sweepEveryMs)
    this.#sweeper.unref()
  }

  /** The in-flight entry for `key`, unless its owner has held it longer than the TTL (then it is dropped). */
  #liveInFlight (key: string, now: number): InFlight | undefined {
    const entry = this.#inFlight.get(key)
    if (entry === undefined || now < entry.createdAt + this.#ttlMs) return entry
    this.#dropInFlight(key)
    return undefined
  }

  #liveDone (key: string, now: number): Done | undefined {
    const entry = this.#done.get(key)
    if (entry === undefined || now < entry.expiresAt) return entry
    this.#done.delete(key)
    return undefined
  }

  #dropInFlight (key: string): void {
    const entry = this.#inFlight.get(key)
    if (entry === undefined) return
    this.#inFlight.delete(key)
    settleAll(entry, 'released')
  }

  /**
   * Frees one slot if the store is full. A done key goes first: evicting it
   * costs at most a re-run after the TTL would have anyway, while evicting an
   * in-flight key lets a duplicate run concurrently with its owner.
   */
  #makeRoom (): void {
    while (this.size >= this.#maxKeys) {
      const oldestDone = this.#done.keys().next()
      if (oldestDone.done !== true) {
        this.#done.delete(oldestDone.value)
        continue
      }
      const oldestRunning = this.#inFlight.keys().next()
      if (oldestRunning.done === true) return
      this.#dropInFlight(oldestRunning.value)
    }
  }
}

function settleAll (entry: InFlight, result: WaitResult): void {
  for (const waiter of entry.waiters) {
    clearTimeout(waiter.timer)
    waiter.resolve(result)
  }
  entry.waiters.clear()
}
