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
import { responseFacts } from './response-tag.js'

type Destination = ReturnType<typeof destination>

export class AccessLog {
  readonly config: AccessLogConfig
  readonly #dest: Destination
  readonly #log: Logger
  readonly #random: () => number

  /** `onError`: the destination failed (cannot be opened or written); lines are dropped, requests go on. */
  constructor (config: AccessLogConfig, onError: (err: Error) => void, random: () => number = Math.random) {
    this.config = config
    this.#random = random
    const d = config.destination
    this.#dest = d === 'stdout' || d === 'stderr'
      ? destination({ fd: d === 'stdout' ? 1 : 2, sync: false })
      : destination({ dest: d, sync: false, mkdir: true, append: true })
    this.#dest.on('error', onError)
    this.#log = pino({ base: null, messageKey: 'msg', timestamp: pino.stdTimeFunctions.isoTime }, this.#dest)
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
      retried: attempts - (f.hedged ? 1 : 0) > 1,
      hedged: f.hedged,
      replayed: f.replayed,
      error: f.errorCode,
      client: req.socket.remoteAddress ?? null
    }, 'request')
  }

  /** Reopens a file destination (after log rotation); stdout/stderr stay. */
  reopen (): void {
    if (this.config.destination !== 'stdout' && this.config.destination !== 'stderr') this.#dest.reopen()
  }

  /** Flushes what is buffered and closes a file destination. */
  async close (): Promise<void> {
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
