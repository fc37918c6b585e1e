/**
 * An admitted request goes upstream: the forwarding headers and the
 * request's deadline are built, then it streams (the common path: nothing
 * to keep) or is prepared first (a body kept for retries, an idempotency
 * key claimed). Everything that fails before the upstream is involved
 * answers with a problem document here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import { ERRORS } from '../core/errors.js'
import { isIdempotent } from '../delivery/retry-policy.js'
import { effectiveTotalMs, parseClientDeadline } from '../delivery/client-deadline.js'
import { retryAfterSeconds, type RuntimeRoute, type RuntimeUpstream } from './runtime.js'
import { clientCertHeader, forwardedProto } from '../edge/client-tls.js'
import { addForwardingHeaders, headerValue, headerValues, type ScannedRequest } from './headers.js'
import { stripPrefix } from './router.js'
import { sendProblem } from '../edge/problem.js'
import { ProxyRequest } from './request.js'
import type { HandlerDeps, RequestSpec } from './deps.js'
import { readBody } from './body.js'
import { runKeyed, validKey, DERIVED_FINGERPRINT } from './idempotent.js'
import { deriveKey } from '../idempotency/derived-key.js'
import type { DerivedKeyConfig } from '../policy/snapshot.js'
import { refuseUnreadBody } from '../edge/unread-body.js'
import { acceptBody, ClientFault, startReading } from '../edge/upload.js'
import type { BodyLimits } from '../edge/upload-guard.js'

/** An admitted request: build what goes upstream and send it (streamed, or prepared when it must be kept). */
export function dispatch (deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, route: RuntimeRoute, scan: ScannedRequest, target: string, host: string, limits: BodyLimits): void {
  const cfg = route.config
  const path = cfg.stripPrefix ? stripPrefix(target, cfg.pathPrefix) : target
  const headers = addForwardingHeaders(scan, req.socket.remoteAddress ?? '', forwardedProto(req.socket), host, clientCertHeader(req.socket))
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

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** Routes with retries or idempotency keys: keep the body if it may be sent again, claim the key. */
async function prepared (deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, route: RuntimeRoute, spec: Mutable<RequestSpec>, scan: ScannedRequest, target: string,
  limits: BodyLimits, fault: ClientFault | null): Promise<void> {
  const cfg = route.config
  const idem = cfg.idempotency
  let key: string | null = null
  let fp: string | null = null
  // keyFrom (the client's key header is not used): derived before the body
  // is read when no part needs it, so a refusal reads nothing; else once
  // the body is in.
  let derive = idem?.keyFrom != null && idem.keyFrom.methods.has(spec.method) ? idem.keyFrom : null
  const settle = (cfgKey: DerivedKeyConfig, bodyRead: boolean): boolean => {
    const d = deriveKey(cfgKey, { method: spec.method, target, header: name => headerValues(req.rawHeaders, name), body: Buffer.isBuffer(spec.body) ? spec.body : null })
    if ('key' in d) {
      key = d.key
      fp = DERIVED_FINGERPRINT
      return true
    }
    route.delivery.counters.keyMissing++
    if (cfgKey.onMissing === 'forward') return true
    if (!bodyRead) refuseUnreadBody(res, scan)
    sendProblem(res, ERRORS.IDEMPOTENCY_KEY_PARTS_MISSING, { requestId: spec.requestId, route: cfg.name, detail: `${d.missing}; the request was not sent upstream` })
    return false
  }
  if (derive !== null && !derive.needsBody) {
    if (!settle(derive, false)) return
    derive = null
  }
  if (idem !== null && idem.keyFrom === null) {
    key = headerValue(req.rawHeaders, idem.header)
    if (key === null && idem.generate && !isIdempotent(spec.method)) {
      key = randomUUID()
      spec.headers.push(idem.header, key)
    }
    if (key !== null && !validKey(key)) {
      refuseUnreadBody(res, scan)
      sendProblem(res, ERRORS.IDEMPOTENCY_KEY_INVALID, { requestId: spec.requestId, route: cfg.name, detail: `the ${idem.header} header must be 1 to 255 visible ASCII characters` })
      return
    }
  }
  if (fault !== null) {
    const keyed = (key !== null || derive !== null) && idem !== null
    const limit = Math.min(cfg.maxBodyBytes, keyed ? idem.maxBodyBytes : (cfg.retry?.bufferBodyBytes ?? 0))
    if (keyed || (scan.contentLength !== null && scan.contentLength <= limit)) {
      startReading(req, res, deps.uploads, limits, fault)
      const body = await readBody(req, limit)
      if (body === 'aborted' || fault.failed) return
      if (body === 'too-large') {
        route.delivery.counters.tooLarge++
        res.shouldKeepAlive = false
        const what = limit === cfg.maxBodyBytes ? `the route's maxBodySize of ${limit} bytes` : `${limit} bytes (idempotency.maxBodySize)`
        sendProblem(res, ERRORS.BODY_TOO_LARGE, { requestId: spec.requestId, route: cfg.name, detail: `${idem?.keyFrom == null ? 'a keyed request body' : 'a body on a route with a dedupe window (idempotency.keyFrom)'} must fit ${what}` })
        return
      }
      spec.body = body
    } else {
      spec.body = acceptBody(req, res, scan.contentLength !== null, cfg.maxBodyBytes, deps.uploads, limits, fault)
    }
  }
  if (derive !== null && !settle(derive, true)) return
  if (key === null || idem === null || route.delivery.store === null) {
    const pr = forward(deps, res, route, spec)
    if (fault !== null && !fault.failed) fault.sink = pr
    return
  }
  const store = route.delivery.store
  spec.captureBytes = idem.maxBodyBytes
  spec.keyedAndDeduped = idem.upstreamDedupes
  spec.outliveClient = true
  await runKeyed({ res, store, cfg: idem, counters: route.delivery.counters, key, fingerprint: fp, method: spec.method, target, body: Buffer.isBuffer(spec.body) ? spec.body : null, requestId: spec.requestId, route: cfg.name }, onComplete => {
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
