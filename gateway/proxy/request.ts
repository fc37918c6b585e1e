/**
 * One client request through the gateway: owns its attempts and commits
 * exactly one of them to the client. This is a deliberate state machine
 * (hence the size):
 *
 *   start ─▶ attempt ─headers─▶ committed ─▶ streaming ─▶ done
 *              │  ▲  └─retryable status / error──┐
 *              │  └──── retry (policy + budget) ◀┘   (else: problem + done)
 *              └─ hedge timer ─▶ second attempt (first good answer wins)
 *
 * Retries follow delivery/retry-policy.ts; the deadline (route total,
 * shortened by a client deadline header) covers all attempts; idempotent
 * routes record the final outcome in the store (see idempotent.ts).
 */
import { isH2 } from '../edge/h2.js'
import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { ERRORS, type ErrorSpec } from '../core/errors.js'
import type { AttemptFailure } from '../delivery/failure.js'
import { statusFailure } from '../delivery/failure.js'
import { retryDecision, isIdempotent } from '../delivery/retry-policy.js'
import type { StoredResponse } from '../idempotency/types.js'
import type { Deadline } from './deadlines.js'
import type { Linked, LinkedList } from '../core/linked-list.js'
import type { RuntimeRoute, RuntimeUpstream } from './runtime.js'
import type { Completion, HandlerDeps, RequestSpec } from './deps.js'
import { Attempt, type AttemptOwner } from './attempt.js'
import { OUTCOME_INDEX } from '../health/outcome.js'
import { responseHeaders } from './headers.js'
import { sendProblem } from '../edge/problem.js'
import { HEDGED, tagAnswer, tagAttempt, tagBytesOut, tagFlag } from '../edge/response-tag.js'
import type { ClientFaultSink } from '../edge/upload.js'

export class ProxyRequest implements AttemptOwner, Deadline, ClientFaultSink {
  deadlineAt = Infinity
  listPrev: Linked | null = null
  listNext: Linked | null = null
  listOwner: LinkedList<Linked> | null = null
  readonly #deps: HandlerDeps
  readonly #res: ServerResponse
  readonly #route: RuntimeRoute
  readonly #spec: RequestSpec
  readonly #attempts: Attempt[] = []
  #committed: Attempt | null = null
  #retryTimer: NodeJS.Timeout | null = null
  #hedgeTimer: NodeJS.Timeout | null = null
  #noRetryReason: string | null = null
  #status = 0
  #headers: string[] = []
  #capture: Buffer[] | null = null
  readonly #baseHeaders: number
  #captured = 0
  #clientGone = false
  #hedge: Attempt | null = null
  #done = false

  constructor (deps: HandlerDeps, res: ServerResponse, route: RuntimeRoute, spec: RequestSpec) {
    this.#deps = deps
    this.#res = res
    this.#route = route
    this.#spec = spec
    this.#baseHeaders = spec.headers.length
  }

  start (first: RuntimeUpstream): void {
    const now = this.#deps.clock.now()
    if (this.#spec.totalMs !== Infinity) {
      this.deadlineAt = now + this.#spec.totalMs
      this.#deps.sweeper.add(this)
    }
    this.#route.delivery.counters.requests++
    this.#route.delivery.budget?.request()
    this.#res.on('close', this.#onClientClose)
    this.#launch(first)
    this.#armHedge()
  }

  // ── attempts ────────────────────────────────────────────────────────────

  #launch (upstream: RuntimeUpstream): void {
    const cfg = this.#route.config
    const a = new Attempt(this.#deps.clock, upstream, this)
    this.#attempts.push(a)
    tagAttempt(this.#res, upstream.name, this.#attempts.length)
    const u = upstream.config
    // The first attempt uses the header array as it is (no copy on the hot
    // path); later ones copy it without the first attempt's Host.
    const headers = this.#attempts.length === 1 ? this.#spec.headers : this.#spec.headers.slice(0, this.#baseHeaders)
    headers.push('host', u.clientHost ? (this.#spec.clientHost === '' ? 'localhost' : this.#spec.clientHost) : u.hostHeader)
    const left = this.deadlineAt === Infinity ? Infinity : Math.max(1, this.deadlineAt - this.#deps.clock.now())
    const t = cfg.timeouts
    const ownLimit = Math.min(t.responseHeadersMs, t.attemptMs > 0 ? t.attemptMs : Infinity)
    a.deadlineBound = left < ownLimit
    a.start({
      path: u.basePath === '' ? this.#spec.path : u.basePath + this.#spec.path,
      method: this.#spec.method,
      headers,
      body: this.#spec.body,
      headersTimeoutMs: Math.min(ownLimit, left),
      bodyIdleMs: t.bodyIdleMs
    })
  }

  /**
   * Another upstream than those tried: the route's normal choice if it is
   * untried, else any available untried one (backups included, lowest
   * priority first), else the normal choice again.
   */
  #next (): RuntimeUpstream | null {
    const u = this.#route.pick()
    if (u !== null && !this.#tried(u)) return u
    for (const level of this.#route.levels) {
      for (const other of level) if (!this.#tried(other) && other.weight > 0 && other.available) return other
    }
    return u
  }

  /** An attempt already went to `u` (a request has a handful of attempts at most: no Set per request). */
  #tried (u: RuntimeUpstream): boolean {
    for (const a of this.#attempts) if (a.upstream === u) return true
    return false
  }

  #inflight (): number {
    let n = 0
    for (const a of this.#attempts) if (!a.done) n++
    return n
  }

  // ── owner callbacks ─────────────────────────────────────────────────────

  onAttemptHeaders (a: Attempt, status: number, raw: Buffer[], statusText: string): boolean {
    if (this.#done || this.#committed !== null) return false
    const retry = this.#route.config.retry
    // Only a status the policy retries is looked at further (and only then is Retry-After read).
    const failure = retry !== null && retry.on.has(String(status)) ? statusFailure(status, header(raw, 'retry-after')) : null
    if (failure !== null && !this.#clientGone) {
      if (this.#inflight() > 1) return false // a hedge is still out: wait for it
      if (this.#retryAfter(a, failure)) return false
    }
    this.#commit(a)
    const { headers, sized } = responseHeaders(raw, this.#spec.requestId, a.upstream.name)
    if (this.#spec.captureBytes > 0) this.#capture = []
    this.#status = status
    this.#headers = headers
    if (this.#clientGone) return true
    try {
      if (statusText !== '' && !isH2(this.#res)) this.#res.writeHead(status, statusText, headers)
      else this.#res.writeHead(status, headers)
    } catch {
      // A header Node refuses (bad characters): the upstream lied. Nothing
      // was sent yet, so the client gets a 502 instead of waiting forever.
      const failure: AttemptFailure = { delivery: 'maybe-processed', conditions: [], spec: ERRORS.UPSTREAM_PROTOCOL, outcome: OUTCOME_INDEX.protocol, detail: 'the upstream sent a response header that is not valid HTTP', status, retryAfterMs: null }
      this.#report(a, failure, 'not retried: the upstream answered')
      this.#problem(ERRORS.UPSTREAM_PROTOCOL, a, failure.detail)
      this.#finish({ response: null, failure, maybeSent: true })
      return false
    }
    if (!sized) process.nextTick(flushIfIdle, this.#res)
    return true
  }

  onAttemptData (a: Attempt, chunk: Buffer): boolean {
    if (this.#capture !== null) {
      this.#captured += chunk.length
      if (this.#captured <= this.#spec.captureBytes) this.#capture.push(chunk)
      else this.#capture = null // too large to keep: the outcome is stored as unknown
    }
    if (this.#clientGone || this.#res.destroyed) return true
    tagBytesOut(this.#res, chunk.length)
    const ok = this.#res.write(chunk)
    if (!ok) this.#res.once('drain', () => a.resume())
    return ok
  }

  onAttemptEnd (): void {
    if (!this.#clientGone) this.#res.end()
    const response = this.#capture === null ? null : { status: this.#status, headers: pairs(this.#headers), body: Buffer.concat(this.#capture) }
    this.#finish({ response, failure: null, maybeSent: true }, response === null && this.#spec.captureBytes > 0)
  }

  onAttemptError (a: Attempt, failure: AttemptFailure, cause: unknown): void {
    const counters = this.#route.delivery.counters
    if (failure.delivery === 'never-sent') counters.neverSent++
    else counters.maybeProcessed++
    if (this.#committed === a) {
      // Failed mid-body: the client already has the headers; cut it.
      this.#report(a, failure, 'the response was already being sent: cut')
      this.#res.destroy()
      this.#finish({ response: null, failure, maybeSent: true }, true)
      return
    }
    if (this.#done) return
    // undici's headers timer and the deadline sweeper race when the first
    // was clamped to the second: either way it is the total deadline.
    if (a.deadlineBound && (cause as { code?: unknown } | null)?.code === 'UND_ERR_HEADERS_TIMEOUT') return this.expire()
    if (this.#inflight() > 0) {
      this.#report(a, failure, 'another attempt is still running')
      return
    }
    if (this.#clientGone && !this.#spec.outliveClient) return this.#finish({ response: null, failure, maybeSent: this.#maybeSent() })
    if (this.#retryAfter(a, failure, cause)) return
    this.#fail(a, failure)
  }

  /** Decides on a retry after `failure`; true when one is scheduled. */
  #retryAfter (a: Attempt, failure: AttemptFailure, cause?: unknown): boolean {
    const d = this.#route.delivery
    const answer = retryDecision({
      cfg: this.#route.config.retry,
      method: this.#spec.method,
      failure,
      attempts: this.#attempts.length,
      bodyReplayable: !(this.#spec.body !== null && !Buffer.isBuffer(this.#spec.body)),
      keyedAndDeduped: this.#spec.keyedAndDeduped,
      timeLeftMs: this.deadlineAt - this.#deps.clock.now(),
      random: this.#deps.random()
    })
    if (!answer.retry) {
      if (answer.reason.includes('may have been processed')) d.counters.unsafeNotRetried++
      this.#report(a, failure, `not retried: ${answer.reason}`, cause)
      this.#noRetryReason = answer.reason
      return false
    }
    // A connect failure put nothing on any upstream: retrying it cannot
    // multiply load, so it is outside the budget (a killed primary costs
    // only the requests that were inside it).
    if (d.budget !== null && !failure.conditions.includes('connect-failure') && !d.budget.tryRetry()) {
      d.counters.budgetDenied++
      this.#report(a, failure, 'not retried: retry budget exhausted', cause)
      this.#noRetryReason = 'retry budget exhausted'
      return false
    }
    d.counters.retries++
    this.#report(a, failure, `retrying in ${Math.round(answer.delayMs)}ms (attempt ${this.#attempts.length + 1})`, cause)
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null
      if (this.#done || (this.#clientGone && !this.#spec.outliveClient)) return
      const u = this.#next()
      if (u === null) this.#fail(a, failure)
      else this.#launch(u)
    }, answer.delayMs)
    this.#retryTimer.unref()
    return true
  }

  // ── hedging ────────────────────────────────────────────────────────────

  #armHedge (): void {
    const h = this.#route.config.hedge
    if (h === null || (this.#spec.method !== 'GET' && this.#spec.method !== 'HEAD') || !isIdempotent(this.#spec.method)) return
    const delay = h.quantile === null ? h.fixedDelayMs : this.#route.view.hedgeDelayMs
    if (delay <= 0) return // no latency observed yet
    this.#hedgeTimer = setTimeout(() => {
      this.#hedgeTimer = null
      if (this.#done || this.#committed !== null || this.#clientGone || this.#inflight() !== 1) return
      const d = this.#route.delivery
      if (d.budget !== null && !d.budget.tryRetry()) {
        d.counters.budgetDenied++
        return
      }
      const u = this.#next()
      if (u === null || this.#tried(u)) return
      d.counters.hedges++
      this.#launch(u)
      this.#hedge = this.#attempts.at(-1) ?? null
      tagFlag(this.#res, HEDGED)
    }, Math.max(h.minDelayMs, delay))
    this.#hedgeTimer.unref()
  }

  // ── endings ──────────────────────────────────────────────────────────────

  #commit (a: Attempt): void {
    this.#committed = a
    tagAnswer(this.#res, a.upstream.name, this.#deps.clock.now() - a.startedAt)
    if (a === this.#hedge) this.#route.delivery.counters.hedgeWins++
    for (const other of this.#attempts) if (other !== a) other.discard()
    this.#clearTimers()
  }

  #clearTimers (): void {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer)
    if (this.#hedgeTimer !== null) clearTimeout(this.#hedgeTimer)
    this.#retryTimer = this.#hedgeTimer = null
  }

  #fail (a: Attempt, failure: AttemptFailure): void {
    // An upstream status is only a failure here when its response was
    // discarded for a hedge that then failed too: say what it was.
    const spec: ErrorSpec = failure.spec ?? (failure.status === 504 ? ERRORS.UPSTREAM_TIMEOUT : failure.status === 502 ? ERRORS.UPSTREAM_RESET : ERRORS.NO_HEALTHY_UPSTREAM)
    this.#problem(spec, a, this.#noRetryReason === null ? failure.detail : `${failure.detail}; ${this.#noRetryReason}`)
    this.#finish({ response: null, failure, maybeSent: this.#maybeSent() })
  }

  #problem (spec: ErrorSpec, a: Attempt, detail: string): void {
    if (this.#clientGone) return
    sendProblem(this.#res, spec, { requestId: this.#spec.requestId, route: this.#route.config.name, upstream: a.upstream.name, detail })
  }

  /**
   * The client is at fault (body too slow, too large): answer it (or cut a
   * response already started) and drop the attempts, which never got a
   * complete request body, so nothing upstream can have processed it.
   */
  failClient (spec: ErrorSpec, detail: string): void {
    if (this.#done) return
    this.#res.shouldKeepAlive = false
    if (this.#committed !== null) this.#res.destroy()
    else if (!this.#clientGone) sendProblem(this.#res, spec, { requestId: this.#spec.requestId, route: this.#route.config.name, detail })
    const drop = (): void => { for (const a of this.#attempts) a.discard() }
    // undici destroys the body stream of an aborted attempt; when that is
    // the client's request itself, its socket would go before the answer
    // is flushed, so the attempts are dropped once it is.
    if (this.#spec.body === this.#res.req && !this.#res.writableFinished) {
      this.#res.once('finish', drop)
      this.#res.once('close', drop)
    } else drop()
    this.#finish({ response: null, failure: null, maybeSent: false })
  }

  /** Deadline reached (shared sweeper). */
  expire (): void {
    if (this.#done) return
    const last = this.#attempts.at(-1)
    for (const a of this.#attempts) a.discard()
    const failure: AttemptFailure = { delivery: this.#maybeSent() ? 'maybe-processed' : 'never-sent', conditions: [], spec: ERRORS.UPSTREAM_TIMEOUT, outcome: OUTCOME_INDEX.timeout, detail: `the request exceeded its total deadline of ${Math.round(this.#spec.totalMs)}ms`, status: 0, retryAfterMs: null }
    if (this.#committed !== null) this.#res.destroy()
    else if (last !== undefined) this.#problem(ERRORS.UPSTREAM_TIMEOUT, last, failure.detail)
    this.#finish({ response: null, failure, maybeSent: failure.delivery === 'maybe-processed' })
  }

  #maybeSent (): boolean {
    return this.#attempts.some(a => a.connected)
  }

  #finish (c: Completion, unknownBecauseTooLarge = false): void {
    if (this.#done) return
    this.#done = true
    this.#clearTimers()
    if (this.deadlineAt !== Infinity) this.#deps.sweeper.delete(this)
    if (unknownBecauseTooLarge && c.failure === null) this.#route.delivery.counters.tooLarge++
    this.#spec.onComplete?.(c)
  }

  #report (a: Attempt, failure: AttemptFailure, decision: string, cause?: unknown): void {
    this.#deps.onAttemptFailed({ route: this.#route.config.name, upstream: a.upstream.name, requestId: this.#spec.requestId, method: this.#spec.method, failure, decision, cause })
  }

  readonly #onClientClose = (): void => {
    if (this.#done || this.#res.writableFinished) return
    this.#clientGone = true
    if (this.#spec.outliveClient) return // keyed: finish the attempt so its outcome is stored
    for (const a of this.#attempts) a.discard()
    this.#finish({ response: null, failure: null, maybeSent: this.#maybeSent() })
  }
}

function flushIfIdle (res: ServerResponse): void {
  if (!res.destroyed && !res.writableEnded) res.flushHeaders()
}

function header (raw: readonly Buffer[], name: string): string | null {
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i] as Buffer
    if (k.length === name.length && k.toString('latin1').toLowerCase() === name) return (raw[i + 1] as Buffer).toString('latin1')
  }
  return null
}

function pairs (flat: readonly string[]): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = []
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string])
  return out
}
