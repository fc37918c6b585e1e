/**
 * One attempt of a client request at one upstream: an undici dispatch
 * handler (the legacy callback API, undici 7's native path). It reports the
 * outcome into its upstream's OutcomeSink (views/ports.ts), tracks whether the request reached the
 * upstream (for payment safety), and hands headers, body and errors to its
 * owner, the ProxyRequest, which decides whether this attempt's response
 * goes to the client.
 *
 * The sink hears begin and end exactly once each: at headers, at the first error,
 * or when the owner aborts it.
 */
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { Clock } from '../core/clock.js'
import type { Linked, LinkedList } from '../core/linked-list.js'
import { OUTCOME_INDEX, statusOutcome, type InflightAttempt } from '../health/outcome.js'
import type { BreakerTicket } from '../health/breaker.js'
import { transportFailure, type AttemptFailure } from '../delivery/failure.js'
import type { RuntimeUpstream } from './runtime.js'
import { classifyUpstreamError } from './upstream-errors.js'

export interface AttemptOwner {
  /** Response headers arrived. Return true to stream this attempt to the client; false discards (aborts) it. */
  onAttemptHeaders (a: Attempt, status: number, raw: Buffer[], statusText: string): boolean
  /** A body chunk of the committed attempt; false = pause until a.resume(). */
  onAttemptData (a: Attempt, chunk: Buffer): boolean
  onAttemptEnd (a: Attempt): void
  onAttemptError (a: Attempt, failure: AttemptFailure, cause: unknown): void
}

export interface AttemptOptions {
  readonly path: string
  readonly method: string
  readonly headers: string[]
  readonly body: Readable | Buffer | null
  readonly headersTimeoutMs: number
  readonly bodyIdleMs: number
}

class Discarded extends Error {}

export class Attempt implements Dispatcher.DispatchHandler, InflightAttempt {
  readonly startedAt: number
  readonly upstream: RuntimeUpstream
  readonly #owner: AttemptOwner
  /** Its response-headers timeout was cut short by the request's total deadline. */
  deadlineBound = false
  listPrev: Linked | null = null
  listNext: Linked | null = null
  listOwner: LinkedList<Linked> | null = null
  #abort: ((err?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #ticket: BreakerTicket | null = null
  #connected = false
  #recorded = false
  #discarded = false
  #done = false

  constructor (clock: Clock, upstream: RuntimeUpstream, owner: AttemptOwner) {
    this.startedAt = clock.now()
    this.upstream = upstream
    this.#owner = owner
  }

  get done (): boolean { return this.#done }
  /**
   * The request was handed to a connection: undici calls onConnect just
   * before it writes, so from here on the upstream may have seen it. The one
   * definition of "maybe sent", for failure classification and for the
   * idempotency store alike.
   */
  get connected (): boolean { return this.#connected }

  start (o: AttemptOptions): void {
    this.#ticket = this.upstream.sink.begin(this)
    this.upstream.pool.dispatch({
      path: o.path,
      method: o.method as Dispatcher.HttpMethod,
      headers: o.headers,
      body: o.body,
      headersTimeout: o.headersTimeoutMs,
      bodyTimeout: o.bodyIdleMs,
      servername: this.upstream.servername // undici's DispatchOptions type lacks it; its Request takes it
    } as Dispatcher.DispatchOptions, this)
  }

  /** Drop this attempt (hedge loser, discarded answer, client gone, deadline). Its owner hears nothing more. */
  discard (): void {
    if (this.#done) return
    this.#discarded = true
    this.#done = true
    this.#record(OUTCOME_INDEX.aborted, false, 0)
    this.#abort?.(new Discarded('discarded'))
  }

  resume (): void {
    this.#resume?.()
  }

  onConnect (abort: (err?: Error) => void): void {
    this.#abort = abort
    if (this.#discarded) abort(new Discarded('discarded')) // aborted before anything is written
    else this.#connected = true
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.#discarded) return false
    // An interim answer (interim.ts drops them at the socket; this is the
    // backstop): the final response is still to come.
    if (statusCode < 200) return true
    this.#record(statusOutcome(statusCode), true, statusCode)
    this.#resume = resume
    if (this.#owner.onAttemptHeaders(this, statusCode, rawHeaders, statusText)) return true
    this.discard()
    return false
  }

  onData (chunk: Buffer): boolean {
    if (this.#discarded) return true
    return this.#owner.onAttemptData(this, chunk)
  }

  onComplete (): void {
    if (this.#discarded) return
    this.#done = true
    this.#owner.onAttemptEnd(this)
  }

  onError (err: Error): void {
    if (this.#discarded || this.#done) return
    this.#done = true
    const c = classifyUpstreamError(err)
    // Only a failure before onConnect proves nothing reached the upstream.
    const failure = transportFailure(c, String((err as { code?: unknown }).code ?? ''), this.#connected)
    this.#record(c.outcome, true, 0)
    this.#owner.onAttemptError(this, failure, err)
  }

  #record (outcome: number, sample: boolean, status: number): void {
    if (this.#recorded) return
    this.#recorded = true
    this.upstream.sink.end(this, this.#ticket, outcome, sample, status)
  }
}
