/**
 * The access log: one JSON line per request as its response closes,
 * sampled for successes, every error kept. What a line holds is fixed here
 * and safe to ship anywhere: names from the policy, the path without its
 * query string, numbers and flags. Never bodies, query strings, headers or
 * upstream addresses.
 *
 * Lines have pino's shape (level, time, the fields, msg: pino-pretty and
 * every pino tool read them) and go out through pino's asynchronous
 * destination (sonic-boom), gathered into 8 KB chunks (edge/line-batch.ts).
 * They are serialized with JSON.stringify on a fixed-shape object rather
 * than by a pino logger: pino's generic serializer, made for arbitrary
 * objects, cost about as much per line as the rest of the access log put
 * together on the bench (docs/access-log.md has the figures).
 */
import { remoteAddressOf } from './h2.js'
import type { ServerResponse } from 'node:http'
import { destination } from 'pino'
import type { AccessLogConfig } from '../policy/snapshot.js'
import { HEDGED, REPLAYED, responseFacts } from './response-tag.js'
import { LineBatch } from './line-batch.js'

type Destination = ReturnType<typeof destination>

const BATCH_BYTES = 8 * 1024
const FLUSH_MS = 1000

export class AccessLog {
  readonly config: AccessLogConfig
  readonly #dest: Destination
  readonly #batch: LineBatch
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
      ? destination({ fd: d === 'stdout' ? 1 : 2, sync: false })
      : destination({ dest: d, sync: false, mkdir: true, append: true })
    this.#batch = new LineBatch(this.#dest, BATCH_BYTES)
    this.#flusher = setInterval(() => { this.#flush() }, FLUSH_MS)
    this.#flusher.unref()
    this.#dest.on('error', (err: Error) => {
      if (!this.#failed) onError(err)
      this.#failed = true
      // Dead for good: lines are dropped, and pino's exit hook (flushSync) must not throw.
      const dead = this.#dest as unknown as Record<string, unknown>
      for (const m of ['write', 'flush', 'flushSync', 'end', 'reopen']) dead[m] = () => true
    })
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
    // pino's key order and values: level 30 (info), time in epoch ms (an ISO string costs a seventh of the line), msg last.
    this.#batch.write(JSON.stringify({
      level: 30,
      time: Date.now(),
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
      client: remoteAddressOf(req) ?? null,
      msg: 'request'
    }) + '\n')
  }

  #flush (): void {
    try {
      this.#batch.flush()
    } catch { /* not open yet, or failed: onError has it */ }
  }

  /** Reopens a file destination (after log rotation); stdout/stderr stay. */
  reopen (): void {
    if (this.config.destination !== 'stdout' && this.config.destination !== 'stderr') this.#dest.reopen()
  }

  /** Flushes what is buffered and closes a file destination. */
  async close (): Promise<void> {
    clearInterval(this.#flusher)
    this.#flush()
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
