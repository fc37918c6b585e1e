/**
 * The request handler of a public listener: read the current runtime once,
 * admit the request at the edge, match a route, check its body size and
 * rate limits, then hand it to the admission stages (admission-stage.ts)
 * and dispatch (dispatch.ts). Everything that can fail before the upstream
 * is involved answers with a problem document.
 */
import { ERRORS } from '../core/errors.js'
import type { ListenerConfig } from '../policy/snapshot.js'
import { scanRequestHeaders } from './headers.js'
import { findRoute, pathOnly } from './router.js'
import { sendProblem } from '../edge/problem.js'
import { refuseUnreadBody } from '../edge/unread-body.js'
import type { HandlerDeps } from './deps.js'
import { admitRequest } from '../edge/admit.js'
import { bodyLimits } from '../edge/upload-guard.js'
import type { RequestHandler } from '../edge/listener.js'
import { tagRequestId, tagRoute } from '../edge/response-tag.js'
import { admit, rateLimited } from './admission-stage.js'

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
        refuseUnreadBody(res, scan)
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
