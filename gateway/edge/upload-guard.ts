/**
 * Slow request bodies, on one shared timer (STYLE.md #9): a body must keep
 * coming (bodyIdle) and must come at a minimum rate (requestBody, extended
 * by one second per minBodyRate bytes, Apache mod_reqtimeout's rule), or the
 * request is answered 408.
 *
 * Only the client is judged: progress is the body bytes node:http has
 * parsed (no 'data' listener, which would change how the body flows), and time is
 * only counted while the gateway is reading the body. While the body is
 * paused (an upstream reading slowly, a connection being opened), the clocks
 * stand still, so a slow upstream never makes a client look slow.
 */
import type { IncomingMessage } from 'node:http'
import type { Clock } from '../core/clock.js'
import { LinkedList, type Linked } from '../core/linked-list.js'
import { SweepTimer } from '../core/sweep-timer.js'
import type { ListenerConfig } from '../policy/snapshot.js'

/** Called once when the body is too slow; `detail` says which limit. */
export type OnSlowBody = (detail: string) => void

class Upload implements Linked {
  listPrev: Linked | null = null
  listNext: Linked | null = null
  listOwner: LinkedList<Linked> | null = null
  readonly req: IncomingMessage
  readonly limits: BodyLimits
  readonly onSlow: OnSlowBody
  /** Body bytes parsed so far. */
  received: number
  /** `received` at the last sweep. */
  bytes = 0
  /** ms the gateway has been reading this body. */
  readingMs = 0
  /** ms of reading with no new byte. */
  idleMs = 0
  lastTick: number

  constructor (req: IncomingMessage, limits: BodyLimits, onSlow: OnSlowBody, now: number) {
    this.req = req
    this.limits = limits
    this.onSlow = onSlow
    this.received = req.readableLength
    // node:http hands each parsed body piece to req.push(), whether or not
    // anyone reads yet; counting there (a per-request wrapper, only for
    // requests with a body) sees every byte, including those that came in
    // the head's own packet, without a 'data' listener that would start
    // the body flowing before undici takes it.
    const push = req.push
    req.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (chunk !== null && typeof chunk === 'object' && 'length' in chunk) this.received += (chunk as Buffer).length
      return push.call(req, chunk, encoding)
    }
    this.lastTick = now
  }
}

export class UploadGuard {
  readonly #clock: Clock
  readonly #uploads = new LinkedList<Upload>()
  readonly #timer: SweepTimer

  /** @param tickMs how often bodies are checked. @default 250 */
  constructor (clock: Clock, tickMs = 250) {
    this.#clock = clock
    this.#timer = new SweepTimer(tickMs, () => this.sweep())
  }

  watch (req: IncomingMessage, limits: BodyLimits, onSlow: OnSlowBody): void {
    if (req.complete) return
    this.#uploads.add(new Upload(req, limits, onSlow, this.#clock.now()))
    this.#timer.start()
  }

  /** One check of every body in flight (the timer calls it; tests may too). */
  sweep (): void {
    const now = this.#clock.now()
    for (const u of this.#uploads) {
      const req = u.req
      if (req.complete || req.destroyed) {
        this.#uploads.delete(u)
        continue
      }
      const dt = now - u.lastTick
      u.lastTick = now
      const bytes = u.received
      const reading = req.readableFlowing === true && !req.isPaused()
      if (bytes > u.bytes) {
        u.bytes = bytes
        u.idleMs = 0
      } else if (reading) {
        u.idleMs += dt
      } else {
        u.idleMs = 0
      }
      if (reading) u.readingMs += dt
      const l = u.limits
      const allowedMs = l.requestBodyMs + (l.minBodyRate > 0 ? (u.bytes / l.minBodyRate) * 1000 : Infinity)
      let detail: string | null = null
      if (u.idleMs > l.bodyIdleMs) detail = `no byte of the request body arrived for ${l.bodyIdleMs}ms (listener bodyIdle)`
      else if (u.readingMs > allowedMs) detail = `the request body arrived slower than ${l.minBodyRate} bytes/s after the listener's requestBody time of ${l.requestBodyMs}ms`
      if (detail !== null) {
        this.#uploads.delete(u)
        u.onSlow(detail)
      }
    }
    if (this.#uploads.size === 0) this.#timer.stop()
  }

  close (): void {
    this.#timer.stop()
    this.#uploads.clear()
  }
}

export interface BodyLimits {
  readonly requestBodyMs: number
  readonly bodyIdleMs: number
  /** Bytes per second; each buys one more second of requestBodyMs (0 = no rate rule). */
  readonly minBodyRate: number
}

export function bodyLimits (cfg: ListenerConfig): BodyLimits {
  return Object.freeze({ requestBodyMs: cfg.timeouts.requestBodyMs, bodyIdleMs: cfg.timeouts.bodyIdleMs, minBodyRate: cfg.limits.minBodyRate })
}
