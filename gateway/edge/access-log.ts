/**
 * The access log: one JSON line per request (pino, asynchronous writes) as
 * its response closes, sampled for successes, every error kept. What a line
 * holds is fixed here and safe to ship anywhere: names from the policy, the
 * path without its query string, numbers and flags. Never bodies, query
 * strings, headers or upstream addresses.
 */
import type { ServerResponse } from 'node:http'
import { pino, destination, type Logger } from 'pino'
import type { AccessLogConfig } from '../policy/snapshot.js'
import { HEDGED, REPLAYED, responseFacts } from './response-tag.js'

type Destination = ReturnType<typeof destination>

const BATCH_BYTES = 8 * 1024
const FLUSH_MS = 1000

export class AccessLog {
  readonly config: AccessLogConfig
  readonly #dest: Destination
  readonly #log: Logger
  readonly #random: () => number
  readonly #flusher: NodeJS.Timeout
  #failed = false

  /** `onError`: the destination failed (cannot be opened or written); lines are dropped, requests go on. */
  constructor (config: AccessLogConfig, onError: (err: Error) => void, random: () => number = Math.random) {
    this.config = config
    this.#random = random
    const d = config.destination
    // Lines are batched (a write per 8 KB, or per second when quieter):
    // one write per line would cost more than the request itself.
    this.#dest = d === 'stdout' || d === 'stderr'
      ? destination({ fd: d === 'stdout' ? 1 : 2, sync: false, minLength: BATCH_BYTES })
      : destination({ dest: d, sync: false, mkdir: true, append: true, minLength: BATCH_BYTES })
    this.#flusher = setInterval(() => { this.#flush() }, FLUSH_MS)
    this.#flusher.unref()
    this.#dest.on('error', (err: Error) => {
      if (!this.#failed) onError(err)
      this.#failed = true
      // Dead for good: lines are dropped, and pino's exit hook (flushSync) must not throw.
      const dead = this.#dest as unknown as Record<string, unknown>
      for (const m of ['write', 'flush', 'flushSync', 'end', 'reopen']) dead[m] = () => true
    })
    // time: epoch ms (pino's default; an ISO string costs a seventh of the line)
    this.#log = pino({ base: null }, this.#dest)
  }

  /** The response closed; `now` on the listener's performance clock. */
  write (res: ServerResponse, listener: string, now: number): void {
    const status = res.statusCode
    const complete = res.writableFinished
    if (complete && status < 400 && this.config.sampleRatio < 1 && this.#random() >= this.config.sampleRatio) return
    const f = responseFacts(res)
    const req = res.req
    const url = req.url ?? ''
    const q = url.indexOf('?')
    const attempts = f.attempts
    const hedged = (f.flags & HEDGED) !== 0
    this.#log.info({
      requestId: f.requestId,
      listener,
      route: f.route,
      upstream: f.upstream,
      method: req.method,
      path: q === -1 ? url : url.slice(0, q),
      status,
      complete,
      durationMs: round(now - f.startedAt),
      upstreamMs: f.upstreamMs < 0 ? null : round(f.upstreamMs),
      bytesIn: declaredLength(req.headers['content-length']),
      bytesOut: f.bytesOut,
      attempts,
      retried: attempts - (hedged ? 1 : 0) > 1,
      hedged,
      replayed: (f.flags & REPLAYED) !== 0,
      error: f.code,
      client: req.socket.remoteAddress ?? null
    }, 'request')
  }

  #flush (): void {
    try { this.#dest.flush() } catch { /* not open yet, or failed: onError has it */ }
  }

  /** Reopens a file destination (after log rotation); stdout/stderr stay. */
  reopen (): void {
    if (this.config.destination !== 'stdout' && this.config.destination !== 'stderr') this.#dest.reopen()
  }

  /** Flushes what is buffered and closes a file destination. */
  async close (): Promise<void> {
    clearInterval(this.#flusher)
    if (this.#failed) return
    const d = this.#dest
    const file = this.config.destination !== 'stdout' && this.config.destination !== 'stderr'
    await new Promise<void>(resolve => {
      const done = (): void => { clearTimeout(timer); resolve() }
      const timer = setTimeout(done, 2000) // a stuck destination must not hold up shutdown
      try {
        if (file) {
          d.once('close', done)
          d.once('error', done)
          d.end()
        } else d.flush(() => { done() })
      } catch { done() }
    })
  }
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000

function declaredLength (v: string | undefined): number | null {
  if (v === undefined) return null
  const n = Number(v)
  return Number.isSafeInteger(n) && n >= 0 ? n : null
}
