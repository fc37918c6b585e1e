/**
 * One client request forwarded to one upstream: an undici dispatch handler
 * (the legacy callback API, which is undici 7's native path) that streams
 * the response to the client with backpressure both ways, records the
 * outcome, and maps failures to problem responses.
 *
 * States: dispatched → (headers: recorded, streaming) → complete | error.
 * The stats are ended exactly once, at headers or at the first error.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import type { Clock } from '../core/clock.js'
import { OUTCOMES, OUTCOME_INDEX, statusOutcome, type InflightAttempt } from '../health/outcome.js'
import type { BreakerTicket } from '../health/breaker.js'
import type { RuntimeRoute, RuntimeUpstream } from './runtime.js'
import type { DeadlineSweeper, Deadline } from './deadlines.js'
import { responseHeaders } from './headers.js'
import { classifyUpstreamError, totalDeadlineError } from './upstream-errors.js'
import { sendProblem } from './problem.js'

export interface ExchangeEnv {
  readonly clock: Clock
  readonly sweeper: DeadlineSweeper
  /** Called for failures worth a log line (not client aborts). */
  readonly onFailure: (info: { route: string, upstream: string, requestId: string, code: string, cause: unknown }) => void
}

export class Exchange implements Dispatcher.DispatchHandler, InflightAttempt, Deadline {
  readonly startedAt: number
  deadlineAt = Infinity
  readonly #env: ExchangeEnv
  readonly #res: ServerResponse
  readonly #route: RuntimeRoute
  readonly #upstream: RuntimeUpstream
  readonly #requestId: string
  #abort: ((err?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #recorded = false
  #ticket: BreakerTicket | null = null
  #sentData = false
  #done = false
  #clientGone = false

  constructor (env: ExchangeEnv, res: ServerResponse, route: RuntimeRoute, upstream: RuntimeUpstream, requestId: string) {
    this.#env = env
    this.#res = res
    this.#route = route
    this.#upstream = upstream
    this.#requestId = requestId
    this.startedAt = env.clock.now()
  }

  /** Sends the request; everything after happens in the callbacks. */
  start (req: IncomingMessage, path: string, headers: string[], hasBody: boolean): void {
    const t = this.#route.config.timeouts
    if (t.totalMs > 0) {
      this.deadlineAt = this.startedAt + t.totalMs
      this.#env.sweeper.add(this)
    }
    this.#upstream.stats.begin(this)
    this.#ticket = this.#upstream.health.begin()
    this.#res.on('close', this.#onClientClose)
    this.#upstream.pool.dispatch({
      path,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body: hasBody ? req : null,
      headersTimeout: t.responseHeadersMs,
      bodyTimeout: t.bodyIdleMs
    }, this)
  }

  onConnect (abort: (err?: Error) => void): void {
    this.#abort = abort
    if (this.#clientGone) abort()
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    this.#record(statusOutcome(statusCode), true, statusCode)
    this.#resume = resume
    const { headers, sized } = responseHeaders(rawHeaders, this.#requestId, this.#upstream.name)
    const res = this.#res
    try {
      if (statusText !== '') res.writeHead(statusCode, statusText, headers)
      else res.writeHead(statusCode, headers)
    } catch (err) {
      // A header value Node refuses (bad characters): the upstream lied.
      this.#abort?.(err as Error)
      return false
    }
    // Node holds headers until the first body write. A streamed response
    // (no Content-Length: SSE, long-poll, chunked downloads) whose body did
    // not come in the same read would leave the client waiting: send the
    // headers on the next tick if no body went out by then.
    if (!sized) process.nextTick(this.#flushHeaders)
    return true
  }

  onData (chunk: Buffer): boolean {
    this.#sentData = true
    const ok = this.#res.write(chunk)
    if (!ok) this.#res.once('drain', this.#onDrain)
    return ok
  }

  onComplete (): void {
    this.#finish()
    this.#res.end()
  }

  onError (err: Error): void {
    const c = classifyUpstreamError(err)
    if (this.#clientGone) {
      this.#record(OUTCOME_INDEX.aborted, false)
      this.#finish()
      return
    }
    this.#record(c.outcome, true)
    this.#finish()
    this.#env.onFailure({ route: this.#route.config.name, upstream: this.#upstream.name, requestId: this.#requestId, code: c.spec.code, cause: err })
    sendProblem(this.#res, c.spec, { requestId: this.#requestId, route: this.#route.config.name, upstream: this.#upstream.name, detail: c.detail })
  }

  /** Total deadline reached (called by the shared sweeper). */
  expire (): void {
    if (this.#done) return
    const err = totalDeadlineError(this.#route.config.timeouts.totalMs)
    if (this.#abort !== null) this.#abort(err)
    else this.onError(err)
  }

  #record (outcome: number, sample: boolean, status = 0): void {
    if (this.#recorded) return
    this.#recorded = true
    this.#upstream.stats.end(this, outcome, sample)
    this.#upstream.health.report(this.#ticket, OUTCOMES[outcome] as string, status)
  }

  #finish (): void {
    this.#done = true
    if (this.deadlineAt !== Infinity) this.#env.sweeper.delete(this)
  }

  readonly #flushHeaders = (): void => {
    if (!this.#sentData && !this.#done && !this.#res.destroyed) this.#res.flushHeaders()
  }

  readonly #onDrain = (): void => {
    this.#resume?.()
  }

  readonly #onClientClose = (): void => {
    if (this.#done || this.#res.writableFinished) return
    this.#clientGone = true
    this.#abort?.()
  }
}
