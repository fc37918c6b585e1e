/**
 * What the listener needs to know about a response when it closes, carried
 * on the response itself (symbol keys, all set on arrival in the same
 * order, so they cost a hidden-class transition once, not per request):
 * when the request arrived, whose tally counts it (the listener's until a
 * route takes the request), the gateway error it was answered with, and for
 * the access log what the proxy did (upstream, attempts, hedge, replay).
 */
import type { ServerResponse } from 'node:http'
import type { ResponseTally } from '../core/response-tally.js'

const STARTED = Symbol('gateway.startedAt')
const TALLY = Symbol('gateway.tally')
const CODE = Symbol('gateway.errorCode')
const ROUTE = Symbol('gateway.route')
const UPSTREAM = Symbol('gateway.upstream')
const ATTEMPTS = Symbol('gateway.attempts')
const FLAGS = Symbol('gateway.flags')
const UPSTREAM_MS = Symbol('gateway.upstreamMs')
const REQUEST_ID = Symbol('gateway.requestId')
const BYTES_OUT = Symbol('gateway.bytesOut')

export const HEDGED = 1
export const REPLAYED = 2

interface Tagged {
  [STARTED]: number
  [TALLY]: ResponseTally
  [CODE]: string | null
  [ROUTE]: string | null
  [UPSTREAM]: string | null
  [ATTEMPTS]: number
  [FLAGS]: number
  [UPSTREAM_MS]: number
  [REQUEST_ID]: string | null
  [BYTES_OUT]: number
}

/** What the access log reads. */
export interface ResponseFacts {
  readonly startedAt: number
  readonly errorCode: string | null
  readonly route: string | null
  readonly upstream: string | null
  readonly attempts: number
  readonly hedged: boolean
  readonly replayed: boolean
  /** Time to the answering attempt's response headers (ms); -1 without one. */
  readonly upstreamMs: number
  readonly requestId: string | null
  /** Response body bytes written. */
  readonly bytesOut: number
}

/** On arrival (edge/listener.ts). */
export function tagResponse (res: ServerResponse, startedAt: number, tally: ResponseTally): void {
  const t = res as unknown as Tagged
  t[STARTED] = startedAt
  t[TALLY] = tally
  t[CODE] = null
  t[ROUTE] = null
  t[UPSTREAM] = null
  t[ATTEMPTS] = 0
  t[FLAGS] = 0
  t[UPSTREAM_MS] = -1
  t[REQUEST_ID] = null
  t[BYTES_OUT] = 0
}

/** The request id the gateway uses for the request (proxy/handler.ts). */
export function tagRequestId (res: ServerResponse, id: string): void {
  (res as unknown as Tagged)[REQUEST_ID] = id
}

/** `n` more bytes of response body were written. */
export function tagBytesOut (res: ServerResponse, n: number): void {
  (res as unknown as Tagged)[BYTES_OUT] += n
}

/** A route took the request: its tally counts the response. */
export function tagRoute (res: ServerResponse, route: string, tally: ResponseTally): void {
  const t = res as unknown as Tagged
  t[TALLY] = tally
  t[ROUTE] = route
}

/** An attempt went out (proxy/request.ts): `n` attempts so far, the newest to `upstream`. */
export function tagAttempt (res: ServerResponse, upstream: string, n: number): void {
  const t = res as unknown as Tagged
  t[UPSTREAM] = upstream
  t[ATTEMPTS] = n
}

/** The answering attempt (proxy/request.ts): its upstream and time to headers. */
export function tagAnswer (res: ServerResponse, upstream: string, ms: number): void {
  const t = res as unknown as Tagged
  t[UPSTREAM] = upstream
  t[UPSTREAM_MS] = ms
}

/** HEDGED: the newest attempt is a hedge; REPLAYED: a stored answer was replayed for an idempotency key. */
export function tagFlag (res: ServerResponse, flag: typeof HEDGED | typeof REPLAYED): void {
  (res as unknown as Tagged)[FLAGS] |= flag
}

/** The gateway answered with a problem (edge/problem.ts). */
export function tagError (res: ServerResponse, code: string): void {
  (res as unknown as Tagged)[CODE] = code
}

/** Counts the closed response in its tally. */
export function recordResponse (res: ServerResponse, now: number): void {
  const t = res as unknown as Partial<Tagged>
  const tally = t[TALLY]
  if (tally === undefined) return
  tally.record(res.statusCode, res.writableFinished, t[CODE] ?? null, now - (t[STARTED] as number))
}

/** The tags of a response, for its access-log line (only when one is written). */
export function responseFacts (res: ServerResponse): ResponseFacts {
  // Every response is tagged on arrival (tagResponse), so every field is set.
  const t = res as unknown as Tagged
  return {
    startedAt: t[STARTED],
    errorCode: t[CODE],
    route: t[ROUTE],
    upstream: t[UPSTREAM],
    attempts: t[ATTEMPTS],
    hedged: (t[FLAGS] & HEDGED) !== 0,
    replayed: (t[FLAGS] & REPLAYED) !== 0,
    upstreamMs: t[UPSTREAM_MS],
    requestId: t[REQUEST_ID],
    bytesOut: t[BYTES_OUT]
  }
}
