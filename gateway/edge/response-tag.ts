/**
 * What the listener needs to know about a response when it closes, carried
 * on the response itself (one small object under one symbol key, so node's
 * response object gains a single property):
 * when the request arrived, whose tally counts it (the listener's until a
 * route takes the request), the gateway error it was answered with, and for
 * the access log what the proxy did (upstream, attempts, hedge, replay).
 */
import type { ServerResponse } from 'node:http'
import type { ResponseTally } from '../core/response-tally.js'

const TAG = Symbol('gateway.response')

export const HEDGED = 1
export const REPLAYED = 2

/** One per response, under one symbol key: a single property added to node's object, then plain field writes. */
class Tag {
  tally: ResponseTally
  readonly startedAt: number
  code: string | null = null
  route: string | null = null
  upstream: string | null = null
  attempts = 0
  flags = 0
  upstreamMs = -1
  requestId: string | null = null
  bytesOut = 0
  /** Admission slots the request holds (admission/), given back when the response closes. */
  overloadSlot: Slot | null = null
  routeSlot: Slot | null = null
  tenantSlot: Slot | null = null

  constructor (startedAt: number, tally: ResponseTally) {
    this.startedAt = startedAt
    this.tally = tally
  }
}

/** An admission slot: what the response gives back when it closes, with how long it was held (ms). */
export interface Slot { readonly leave: (heldMs: number) => void }

interface Tagged { [TAG]: Tag }
const tag = (res: ServerResponse): Tag => (res as unknown as Tagged)[TAG]

/** What the access log reads: the response's tag as it is when the response closes. */
export type ResponseFacts = Readonly<Tag>

/** On arrival (edge/listener.ts). */
export function tagResponse (res: ServerResponse, startedAt: number, tally: ResponseTally): void {
  (res as unknown as Tagged)[TAG] = new Tag(startedAt, tally)
}

/** The request id the gateway uses for the request (proxy/handler.ts). */
export function tagRequestId (res: ServerResponse, id: string): void {
  tag(res).requestId = id
}

/** `n` more bytes of response body were written. */
export function tagBytesOut (res: ServerResponse, n: number): void {
  tag(res).bytesOut += n
}

/** A route took the request: its tally counts the response. */
export function tagRoute (res: ServerResponse, route: string, tally: ResponseTally): void {
  const t = tag(res)
  t.tally = tally
  t.route = route
}

/** An attempt went out (proxy/request.ts): `n` attempts so far, the newest to `upstream`. */
export function tagAttempt (res: ServerResponse, upstream: string, n: number): void {
  const t = tag(res)
  t.upstream = upstream
  t.attempts = n
}

/** The answering attempt (proxy/request.ts): its upstream and time to headers. */
export function tagAnswer (res: ServerResponse, upstream: string, ms: number): void {
  const t = tag(res)
  t.upstream = upstream
  t.upstreamMs = ms
}

/** HEDGED: the newest attempt is a hedge; REPLAYED: a stored answer was replayed for an idempotency key. */
export function tagFlag (res: ServerResponse, flag: typeof HEDGED | typeof REPLAYED): void {
  tag(res).flags |= flag
}

/** The gateway answered with a problem (edge/problem.ts). */
export function tagError (res: ServerResponse, code: string): void {
  tag(res).code = code
}

/** The request took a slot of the gateway-wide overload gate or of its route's gate (proxy/handler.ts). */
export function tagSlot (res: ServerResponse, which: 'overload' | 'route' | 'tenant', slot: Slot): void {
  const t = tag(res)
  if (which === 'overload') t.overloadSlot = slot
  else if (which === 'route') t.routeSlot = slot
  else t.tenantSlot = slot
}

/** The response closed: its slots go back (edge/listener.ts, once per response; `now` on the listener's clock). */
export function releaseSlots (res: ServerResponse, now: number): void {
  const t = (res as unknown as Partial<Tagged>)[TAG]
  if (t === undefined) return
  const o = t.overloadSlot
  const r = t.routeSlot
  const n = t.tenantSlot
  if (o === null && r === null && n === null) return
  t.overloadSlot = t.routeSlot = t.tenantSlot = null
  const held = now - t.startedAt
  if (o !== null) o.leave(held)
  if (r !== null) r.leave(held)
  if (n !== null) n.leave(held)
}

/** Counts the closed response in its tally. */
export function recordResponse (res: ServerResponse, now: number): void {
  const t = (res as unknown as Partial<Tagged>)[TAG]
  if (t === undefined) return
  t.tally.record(res.statusCode, res.writableFinished, t.code, now - t.startedAt)
}

/** The tags of a response, for its access-log line. */
export function responseFacts (res: ServerResponse): ResponseFacts {
  return tag(res)
}
