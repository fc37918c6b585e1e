/**
 * The dashboard's samples: one per interval (1 s by default) from the
 * moment the admin API opens, kept for the last HISTORY_SAMPLES so a page
 * opened mid-incident draws the last five minutes at once. Off the hot
 * path: it reads the /status document once an interval, nothing per request.
 */
import { buildSample, type Sample } from './sample.js'

export const HISTORY_SAMPLES = 300

type Json = Record<string, any>

export class DashboardSampler {
  readonly #status: () => Promise<object> | object
  readonly #intervalMs: number
  readonly #history: Sample[] = []
  readonly #subscribers = new Set<(s: Sample) => void>()
  #prev: { doc: Json, at: number } | null = null
  #timer: NodeJS.Timeout | null = null
  #busy = false

  constructor (status: () => Promise<object> | object, intervalMs = 1000) {
    this.#status = status
    this.#intervalMs = intervalMs
  }

  get history (): readonly Sample[] {
    return this.#history
  }

  /** Starts sampling (idempotent). */
  start (): void {
    if (this.#timer !== null) return
    this.#timer = setInterval(() => { void this.#take() }, this.#intervalMs)
    this.#timer.unref()
    void this.#take()
  }

  /** Live samples to `fn` until the returned function is called. */
  subscribe (fn: (s: Sample) => void): () => void {
    this.#subscribers.add(fn)
    return () => { this.#subscribers.delete(fn) }
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    // Rates need two documents an interval apart: a gap starts afresh.
    this.#prev = null
  }

  async #take (): Promise<void> {
    if (this.#busy) return
    this.#busy = true
    try {
      const doc = await this.#status() as Json
      const at = Date.now()
      const prev = this.#prev
      this.#prev = { doc, at }
      if (prev === null || this.#timer === null) return
      const s = buildSample(doc, prev.doc, at, at - prev.at)
      this.#history.push(s)
      if (this.#history.length > HISTORY_SAMPLES) this.#history.shift()
      for (const fn of this.#subscribers) fn(s)
    } catch {
      // A status that could not be read (a worker busy): the next interval tries again.
    } finally {
      this.#busy = false
    }
  }
}
