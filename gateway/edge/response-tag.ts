/**
 * What the listener needs to know about a response when it closes, carried
 * on the response itself (symbol keys, set for every response in the same
 * order, so they cost a hidden-class transition once, not per request):
 * when the request arrived, whose tally counts it (the listener's until a
 * route takes the request), and the gateway error it was answered with.
 */
import type { ServerResponse } from 'node:http'
import type { ResponseTally } from '../core/response-tally.js'

const STARTED = Symbol('gateway.startedAt')
const TALLY = Symbol('gateway.tally')
const CODE = Symbol('gateway.errorCode')

interface Tagged {
  [STARTED]: number
  [TALLY]: ResponseTally
  [CODE]: string | null
}

/** On arrival (edge/listener.ts). */
export function tagResponse (res: ServerResponse, startedAt: number, tally: ResponseTally): void {
  const t = res as unknown as Tagged
  t[STARTED] = startedAt
  t[TALLY] = tally
  t[CODE] = null
}

/** A route took the request: its tally counts the response. */
export function tagRoute (res: ServerResponse, tally: ResponseTally): void {
  (res as unknown as Tagged)[TALLY] = tally
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
