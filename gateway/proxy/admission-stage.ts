/**
 * The admission stages of a request that has a route, in order: past its
 * rate limits (the handler checks those, sync or on Redis), its tenant's
 * share (bulkheads.perTenant), the gateway-wide overload gate by priority (critical and high may wait
 * briefly), then the route's admission gate (a bounded FIFO queue), then
 * dispatch. Each refusal is a coded problem with Retry-After; a slot taken
 * is tagged on the response and given back when it closes (edge/listener.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ERRORS } from '../core/errors.js'
import type { Runtime, RuntimeRoute } from './runtime.js'
import type { ScannedRequest } from './headers.js'
import { sendProblem } from '../edge/problem.js'
import { refuseUnreadBody } from '../edge/unread-body.js'
import type { HandlerDeps } from './deps.js'
import type { BodyLimits } from '../edge/upload-guard.js'
import { tagSlot, type Slot } from '../edge/response-tag.js'
import type { AdmissionGate, Waiter } from '../admission/gate.js'
import type { RateVerdict } from '../ratelimit/route-limits.js'
import type { OverloadGate } from '../admission/overload.js'
import { dispatch } from './dispatch.js'

/** Past the rate limits: the gateway-wide overload gate (by priority), the route's admission gate, then dispatch. */
export function admit (deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, rt: Runtime, route: RuntimeRoute, scan: ScannedRequest, target: string, host: string, limits: BodyLimits): void {
  const cfg = route.config
  const cap = route.tenantCap
  if (cap !== null) {
    const tenant = cap.keyOf(req.rawHeaders)
    if (tenant !== null) {
      const slot = cap.tryEnter(tenant)
      if (slot === null) {
        refuseUnreadBody(res, scan)
        sendProblem(res, ERRORS.TENANT_BUSY, { requestId: scan.requestId, route: cfg.name, retryAfterSeconds: 1, detail: `the tenant has ${cap.config.maxConcurrent} requests in flight on route ${cfg.name} (bulkheads.perTenant.maxConcurrent)` })
        return
      }
      tagSlot(res, 'tenant', slot)
    }
  }
  const overload = rt.overload
  if (overload !== null) {
    if (!overload.tryEnter(cfg.priority)) {
      if (overload.mayWait(cfg.priority)) {
        waitForOverload(overload, deps, req, res, route, scan, target, host, limits)
        return
      }
      shed(res, overload, route, scan)
      return
    }
    tagSlot(res, 'overload', overload)
  }
  admitRoute(deps, req, res, route, scan, target, host, limits)
}

function shed (res: ServerResponse, overload: OverloadGate, route: RuntimeRoute, scan: ScannedRequest): void {
  const cfg = route.config
  overload.refuse(cfg.priority)
  refuseUnreadBody(res, scan)
  sendProblem(res, ERRORS.SHED, { requestId: scan.requestId, route: cfg.name, retryAfterSeconds: 1, detail: `${overload.inflight} requests in flight in the gateway; ${cfg.priority}-priority requests are refused from ${overload.ceiling(cfg.priority)} (overload.maxConcurrent ${overload.config?.maxConcurrent ?? 0})` })
}

/** A critical or high request at its ceiling: wait (briefly) for a slot of the overload gate, then go on. */
function waitForOverload (overload: OverloadGate, deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, route: RuntimeRoute, scan: ScannedRequest, target: string, host: string, limits: BodyLimits): void {
  const priority = route.config.priority
  const gone = (): void => { overload.cancel(waiter) }
  const waiter = overload.wait(priority, () => {
    granted(deps, res, scan, gone, 'overload', overload, () => { admitRoute(deps, req, res, route, scan, target, host, limits) })
  }, () => {
    res.off('close', gone)
    // Counted as refused by the gate's sweep.
    refuseUnreadBody(res, scan)
    sendProblem(res, ERRORS.SHED, { requestId: scan.requestId, route: route.config.name, retryAfterSeconds: 1, detail: `waited ${overload.config?.queueTimeoutMs ?? 0} ms (overload.queueTimeout) without a slot; ${overload.inflight} requests in flight in the gateway` })
  })
  res.once('close', gone)
}

/** A waiting request got its slot: it stops watching for its client leaving, holds the slot, and goes on. */
function granted (deps: HandlerDeps, res: ServerResponse, scan: ScannedRequest, gone: () => void, which: 'overload' | 'route', slot: Slot, next: () => void): void {
  res.off('close', gone)
  tagSlot(res, which, slot)
  try {
    next()
  } catch (err) {
    deps.onInternalError(err, scan.requestId)
    sendProblem(res, ERRORS.INTERNAL, { requestId: scan.requestId })
  }
}

/** Past the overload gate: the route's admission gate, then dispatch. */
function admitRoute (deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, route: RuntimeRoute, scan: ScannedRequest, target: string, host: string, limits: BodyLimits): void {
  const gate = route.admission
  if (gate !== null) {
    if (!gate.tryEnter()) {
      waitForSlot(gate, deps, req, res, route, scan, target, host, limits)
      return
    }
    tagSlot(res, 'route', gate)
  }
  dispatch(deps, req, res, route, scan, target, host, limits)
}

/** 429 with Retry-After and the IETF RateLimit-Policy / RateLimit fields of the limit that refused. */
export function rateLimited (res: ServerResponse, route: RuntimeRoute, scan: ScannedRequest, v: RateVerdict): void {
  const l = v.limit as NonNullable<RateVerdict['limit']>
  refuseUnreadBody(res, scan)
  const windowS = Math.max(1, Math.ceil(l.windowMs / 1000))
  sendProblem(res, ERRORS.RATE_LIMITED, {
    requestId: scan.requestId,
    route: route.config.name,
    retryAfterSeconds: Math.max(1, Math.ceil(v.retryAfterMs / 1000)),
    headers: {
      'ratelimit-policy': `"${l.name}";q=${l.limit};w=${windowS}`,
      ratelimit: `"${l.name}";r=0;t=${Math.max(1, Math.ceil(v.resetMs / 1000))}`
    },
    detail: `over the route's rate limit "${l.name}": ${l.limit} requests per ${l.windowMs} ms per ${l.key.kind === 'header' ? `${l.key.header} header` : l.key.kind}`
  })
}

/**
 * No slot free: wait in the route's queue (the body stays unread), then
 * dispatch, or answer 503 GW_ERR_OVERLOADED when the queue is full or the
 * wait runs out. A client that leaves while waiting gives up its place.
 */
function waitForSlot (gate: AdmissionGate, deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, route: RuntimeRoute, scan: ScannedRequest, target: string, host: string, limits: BodyLimits): void {
  let waiter: Waiter | null = null
  const gone = (): void => { if (waiter !== null) gate.cancel(waiter) }
  waiter = gate.wait(() => {
    granted(deps, res, scan, gone, 'route', gate, () => { dispatch(deps, req, res, route, scan, target, host, limits) })
  }, () => {
    res.off('close', gone)
    overloaded(res, gate, route, scan, `waited ${gate.config.queueTimeoutMs} ms (admission.queueTimeout) without a free slot`)
  })
  if (waiter === null) {
    overloaded(res, gate, route, scan, `${gate.inflight} requests in flight (admission.maxConcurrent ${gate.config.maxConcurrent}) and ${gate.waiting} waiting (admission.queue ${gate.config.queue})`)
    return
  }
  res.once('close', gone)
}

function overloaded (res: ServerResponse, gate: AdmissionGate, route: RuntimeRoute, scan: ScannedRequest, detail: string): void {
  refuseUnreadBody(res, scan)
  sendProblem(res, ERRORS.OVERLOADED, { requestId: scan.requestId, route: route.config.name, retryAfterSeconds: Math.max(1, Math.ceil(gate.config.queueTimeoutMs / 1000)), detail: `route ${route.config.name}: ${detail}` })
}
