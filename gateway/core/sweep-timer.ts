/**
 * One shared interval for a whole set of watched things (STYLE.md #9: one
 * timer instead of one per request) that runs only while there is
 * something to watch, so an idle gateway has no timer ticking and tests
 * do not hang on one. Unref'd: it never keeps the process alive.
 */
export class SweepTimer {
  readonly #tickMs: number
  readonly #sweep: () => void
  #timer: NodeJS.Timeout | null = null

  constructor (tickMs: number, sweep: () => void) {
    this.#tickMs = tickMs
    this.#sweep = sweep
  }

  /** Runs `sweep` every tick from now on (no-op when already running). */
  start (): void {
    if (this.#timer !== null) return
    this.#timer = setInterval(this.#sweep, this.#tickMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }
}
