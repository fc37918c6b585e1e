/**
 * Owns every UpstreamStats and the one timer that rotates their windows.
 * Stats survive reloads by key; those whose upstream left the policy are
 * dropped by retain().
 */
import type { Clock } from '../core/clock.js'
import { UpstreamStats } from './upstream-stats.js'

export class StatsRegistry {
  readonly #stats = new Map<string, UpstreamStats>()
  readonly #clock: Clock
  #windowMs: number
  #resolutionMs: number
  #timer: NodeJS.Timeout | null = null

  constructor (clock: Clock, windowMs = 10_000, resolutionMs = 1000) {
    this.#clock = clock
    this.#windowMs = windowMs
    this.#resolutionMs = resolutionMs
  }

  /** The stats for `route/upstream`, created on first use. */
  get (route: string, upstream: string): UpstreamStats {
    const key = `${route}/${upstream}`
    let s = this.#stats.get(key)
    if (s === undefined) {
      s = new UpstreamStats(route, upstream, this.#clock, this.#windowMs, this.#resolutionMs)
      this.#stats.set(key, s)
    }
    return s
  }

  /** Apply a (possibly new) window shape; restarts the rotation timer if it runs. */
  configure (windowMs: number, resolutionMs: number): void {
    if (windowMs === this.#windowMs && resolutionMs === this.#resolutionMs) return
    this.#windowMs = windowMs
    this.#resolutionMs = resolutionMs
    for (const s of this.#stats.values()) s.resize(windowMs, resolutionMs)
    if (this.#timer !== null) {
      this.stop()
      this.start()
    }
  }

  /** Drop stats whose key is not in `keys`. */
  retain (keys: ReadonlySet<string>): void {
    for (const key of this.#stats.keys()) {
      // Not closed: requests still in flight on the previous runtime may
      // record into it; it is garbage once they end.
      if (!keys.has(key)) this.#stats.delete(key)
    }
  }

  rotateAll (): void {
    for (const s of this.#stats.values()) s.rotate()
  }

  all (): IterableIterator<UpstreamStats> {
    return this.#stats.values()
  }

  /** Rotate on a real timer (tests and the simulator call rotateAll() themselves). */
  start (): void {
    if (this.#timer !== null) return
    this.#timer = setInterval(() => this.rotateAll(), this.#resolutionMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  close (): void {
    this.stop()
    for (const s of this.#stats.values()) s.close()
    this.#stats.clear()
  }
}
