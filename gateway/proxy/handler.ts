/**
 * The request handler of a public listener: read the current runtime once,
 * match a route, pick an upstream, forward. Everything that can fail before
 * the upstream is involved answers with a problem document here. Requests
 * that must be kept (retry with a body, idempotency key) are read into
 * memory first; all others stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import { ERRORS } from '../core/errors.js'
import type { ListenerConfig } from '../policy/snapshot.js'
import { isIdempotent } from '../delivery/retry-policy.js'
import { effectiveTotalMs, parseClientDeadline } from '../delivery/client-deadline.js'
import { retryAfterSeconds, type Runtime, type RuntimeRoute, type RuntimeUpstream } from './runtime.js'
import { addForwardingHeaders, headerValue, scanRequestHeaders, type ScannedRequest } from './headers.js'
import { findRoute, pathOnly, stripPrefix } from './router.js'
import { sendProblem } from '../edge/problem.js'
import { ProxyRequest } from './request.js'
import type { HandlerDeps, RequestSpec } from './deps.js'
import { readBody } from './body.js'
import { runKeyed, validKey } from './idempotent.js'
import { admitRequest } from '../edge/admit.js'
import { acceptBody, ClientFault, startReading } from '../edge/upload.js'
import { bodyLimits, type BodyLimits } from '../edge/upload-guard.js'
import type { RequestHandler } from '../edge/listener.js'
import { tagRequestId, tagRoute, tagSlot } from '../edge/response-tag.js'
import type { AdmissionGate, Waiter } from '../admission/gate.js'
import type { RateVerdict } from '../ratelimit/route-limits.js'
import type { OverloadGate } from '../admission/overload.js'

export type { RequestHandler }
export type { HandlerDeps, AttemptFailedInfo } from './deps.js'

export function createRequestHandler (deps: HandlerDeps, listener: ListenerConfig): RequestHandler {
  const limits = bodyLimits(listener)
  return function handle (req, res) {
    const scan = scanRequestHeaders(req.rawHeaders, listener.trustForwarded)
    tagRequestId(res, scan.requestId)
    try {
      const adm = admitRequest(req, listener, scan)
      if ('reject' in adm) {
        res.shouldKeepAlive = false
        sendProblem(res, adm.reject, { requestId: scan.requestId, detail: adm.detail })
        return
      }
      const rt = deps.current()
      const method = req.method ?? 'GET'
      const target = adm.target
      const route = findRoute(rt.routes, method, target, adm.host, req.rawHeaders)
      if (route === null) {
        if (scan.hasBody) res.shouldKeepAlive = false // its body is not read
        sendProblem(res, ERRORS.ROUTE_NOT_FOUND, { requestId: scan.requestId, detail: `no route matches ${method} ${pathOnly(target)}` })
        return
      }
      tagRoute(res, route.config.name, route.delivery.responses)
      const cfg = route.config
      if (scan.contentLength !== null && scan.contentLength > cfg.maxBodyBytes) {
        // Refused before a byte of the body is read or anything is sent upstream.
        route.delivery.counters.tooLarge++
        res.shouldKeepAlive = false
        sendProblem(res, ERRORS.BODY_TOO_LARGE, { requestId: scan.requestId, route: cfg.name, detail: `the request body of ${scan.contentLength} bytes is larger than the route's maxBodySize of ${cfg.maxBodyBytes} bytes` })
        return
      }
      const rl = route.rateLimits
      if (rl !== null) {
        const verdict = rl.check(req, scan)
        if (verdict instanceof Promise) {
          verdict.then(v => {
            if (res.destroyed) return // the client left while Redis answered
            if (!v.allowed) rateLimited(res, route, scan, v)
            else admit(deps, req, res, rt, route, scan, target, adm.host, limits)
          }).catch(err => {
            deps.onInternalError(err, scan.requestId)
            sendProblem(res, ERRORS.INTERNAL, { requestId: scan.requestId })
          })
          return
        }
        if (!verdict.allowed) {
          rateLimited(res, route, scan, verdict)
          return
        }
      }
      admit(deps, req, res, rt, route, scan, target, adm.host, limits)
    } catch (err) {
      deps.onInternalError(err, scan.requestId)
      sendProblem(res, ERRORS.INTERNAL, { requestId: scan.requestId })
    }
  }
}

/** Past the rate limits: the gateway-wide overload gate (by priority), the route's admission gate, then dispatch. */
function admit (deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, rt: Runtime, route: RuntimeRoute, scan: ScannedRequest, target: string, host: string, limits: BodyLimits): void {
  const cfg = route.config
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
  if (scan.hasBody) res.shouldKeepAlive = false // its body is not read
  sendProblem(res, ERRORS.SHED, { requestId: scan.requestId, route: cfg.name, retryAfterSeconds: 1, detail: `${overload.inflight} requests in flight in the gateway; ${cfg.priority}-priority requests are refused from ${overload.ceiling(cfg.priority)} (overload.maxConcurrent ${overload.config?.maxConcurrent ?? 0})` })
}

/** A critical or high request at its ceiling: wait (briefly) for a slot of the overload gate, then go on. */
function waitForOverload (overload: OverloadGate, deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, route: RuntimeRoute, scan: ScannedRequest, target: string, host: string, limits: BodyLimits): void {
  const priority = route.config.priority
  const gone = (): void => { overload.cancel(waiter) }
  const waiter = overload.wait(priority, () => {
    res.off('close', gone)
    tagSlot(res, 'overload', overload)
    try {
      admitRoute(deps, req, res, route, scan, target, host, limits)
    } catch (err) {
      deps.onInternalError(err, scan.requestId)
      sendProblem(res, ERRORS.INTERNAL, { requestId: scan.requestId })
    }
  }, () => {
    res.off('close', gone)
    // Counted as refused by the gate's sweep.
    if (scan.hasBody) res.shouldKeepAlive = false
    sendProblem(res, ERRORS.SHED, { requestId: scan.requestId, route: route.config.name, retryAfterSeconds: 1, detail: `waited ${overload.config?.queueTimeoutMs ?? 0} ms (overload.queueTimeout) without a slot; ${overload.inflight} requests in flight in the gateway` })
  })
  res.once('close', gone)
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
function rateLimited (res: ServerResponse, route: RuntimeRoute, scan: ScannedRequest, v: RateVerdict): void {
  const l = v.limit as NonNullable<RateVerdict['limit']>
  if (scan.hasBody) res.shouldKeepAlive = false // its body is not read
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

/** An admitted request: build what goes upstream and send it (streamed, or prepared when it must be kept). */
function dispatch (deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, route: RuntimeRoute, scan: ScannedRequest, target: string, host: string, limits: BodyLimits): void {
  const proto = 'http' // TLS listeners are not there yet
  const cfg = route.config
  const path = cfg.stripPrefix ? stripPrefix(target, cfg.pathPrefix) : target
  const headers = addForwardingHeaders(scan, req.socket.remoteAddress ?? '', proto, host)
  const totalMs = effectiveTotalMs(cfg.timeouts.totalMs, scan.xRequestTimeout === null && scan.grpcTimeout === null ? null : parseClientDeadline(scan.xRequestTimeout, scan.grpcTimeout))
  const method = req.method ?? 'GET'
  const spec: Mutable<RequestSpec> = { method, path, headers, body: null, hasBody: scan.hasBody, requestId: scan.requestId, clientHost: host, totalMs, captureBytes: 0, keyedAndDeduped: false, outliveClient: false, onComplete: null }
  const fault = scan.hasBody ? new ClientFault(res, scan.requestId, cfg.name) : null
  if (cfg.idempotency === null && (cfg.retry === null || !scan.hasBody)) {
    // The common path: nothing to keep, stream the body once. The
    // upstream is picked first, so a 503 comes before any 100-continue.
    const upstream = pickOr503(deps, res, route, spec)
    if (upstream === null) return
    if (fault !== null) spec.body = acceptBody(req, res, scan.contentLength !== null, cfg.maxBodyBytes, deps.uploads, limits, fault)
    const pr = new ProxyRequest(deps, res, route, spec)
    if (fault !== null) fault.sink = pr
    pr.start(upstream)
    return
  }
  prepared(deps, req, res, route, spec, scan, target, limits, fault).catch(err => {
    deps.onInternalError(err, scan.requestId)
    sendProblem(res, ERRORS.INTERNAL, { requestId: scan.requestId })
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
    res.off('close', gone)
    tagSlot(res, 'route', gate)
    try {
      dispatch(deps, req, res, route, scan, target, host, limits)
    } catch (err) {
      deps.onInternalError(err, scan.requestId)
      sendProblem(res, ERRORS.INTERNAL, { requestId: scan.requestId })
    }
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
  if (scan.hasBody) res.shouldKeepAlive = false // its body is not read
  sendProblem(res, ERRORS.OVERLOADED, { requestId: scan.requestId, route: route.config.name, retryAfterSeconds: Math.max(1, Math.ceil(gate.config.queueTimeoutMs / 1000)), detail: `route ${route.config.name}: ${detail}` })
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** Routes with retries or idempotency keys: keep the body if it may be sent again, claim the key. */
async function prepared (deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, route: RuntimeRoute, spec: Mutable<RequestSpec>, scan: ScannedRequest, target: string,
  limits: BodyLimits, fault: ClientFault | null): Promise<void> {
  const cfg = route.config
  const idem = cfg.idempotency
  let key: string | null = null
  if (idem !== null) {
    key = headerValue(req.rawHeaders, idem.header)
    if (key === null && idem.generate && !isIdempotent(spec.method)) {
      key = randomUUID()
      spec.headers.push(idem.header, key)
    }
    if (key !== null && !validKey(key)) {
      sendProblem(res, ERRORS.IDEMPOTENCY_KEY_INVALID, { requestId: spec.requestId, route: cfg.name, detail: `the ${idem.header} header must be 1 to 255 visible ASCII characters` })
      return
    }
  }
  if (fault !== null) {
    const keyed = key !== null && idem !== null
    const limit = Math.min(cfg.maxBodyBytes, keyed ? idem.maxBodyBytes : (cfg.retry?.bufferBodyBytes ?? 0))
    if (keyed || (scan.contentLength !== null && scan.contentLength <= limit)) {
      startReading(req, res, deps.uploads, limits, fault)
      const body = await readBody(req, limit)
      if (body === 'aborted' || fault.failed) return
      if (body === 'too-large') {
        route.delivery.counters.tooLarge++
        res.shouldKeepAlive = false
        const what = limit === cfg.maxBodyBytes ? `the route's maxBodySize of ${limit} bytes` : `${limit} bytes (idempotency.maxBodySize)`
        sendProblem(res, ERRORS.BODY_TOO_LARGE, { requestId: spec.requestId, route: cfg.name, detail: `a keyed request body must fit ${what}` })
        return
      }
      spec.body = body
    } else {
      spec.body = acceptBody(req, res, scan.contentLength !== null, cfg.maxBodyBytes, deps.uploads, limits, fault)
    }
  }
  if (key === null || idem === null || route.delivery.store === null) {
    const pr = forward(deps, res, route, spec)
    if (fault !== null && !fault.failed) fault.sink = pr
    return
  }
  const store = route.delivery.store
  spec.captureBytes = idem.maxBodyBytes
  spec.keyedAndDeduped = idem.upstreamDedupes
  spec.outliveClient = true
  await runKeyed({ res, store, cfg: idem, counters: route.delivery.counters, key, method: spec.method, target, body: Buffer.isBuffer(spec.body) ? spec.body : null, requestId: spec.requestId, route: cfg.name }, onComplete => {
    spec.onComplete = onComplete
    if (forward(deps, res, route, spec) === null) onComplete({ response: null, failure: null, maybeSent: false })
  })
}

/** The first upstream for the request, or null after answering 503. */
function pickOr503 (deps: HandlerDeps, res: ServerResponse, route: RuntimeRoute, spec: RequestSpec): RuntimeUpstream | null {
  const upstream = route.pick()
  if (upstream === null) {
    // An unread body (maybe never sent, for Expect: 100-continue) leaves the connection unusable.
    if (spec.body === null && spec.hasBody) res.shouldKeepAlive = false
    sendProblem(res, ERRORS.NO_HEALTHY_UPSTREAM, { requestId: spec.requestId, route: route.config.name, retryAfterSeconds: retryAfterSeconds(route, deps.clock.now()) })
  }
  return upstream
}

/** Picks the first upstream and starts the request; null when none was available (503 sent). */
function forward (deps: HandlerDeps, res: ServerResponse, route: RuntimeRoute, spec: RequestSpec): ProxyRequest | null {
  const upstream = pickOr503(deps, res, route, spec)
  if (upstream === null) return null
  const pr = new ProxyRequest(deps, res, route, spec)
  pr.start(upstream)
  return pr
}
