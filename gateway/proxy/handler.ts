/**
 * The request handler of a public listener: read the current runtime once,
 * match a route, pick an upstream, forward. Everything that can fail before
 * the upstream is involved answers with a problem document here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ERRORS } from '../core/errors.js'
import type { ListenerConfig } from '../policy/snapshot.js'
import type { Runtime, RuntimeRoute } from './runtime.js'
import { addForwardingHeaders, scanRequestHeaders } from './headers.js'
import { routeMatches } from './router.js'
import { sendProblem } from './problem.js'
import { Exchange, type ExchangeEnv } from './exchange.js'

export interface HandlerDeps extends ExchangeEnv {
  /** The runtime to use for a request that starts now. */
  readonly current: () => Runtime
  readonly onInternalError: (err: unknown, requestId: string) => void
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void

export function createRequestHandler (deps: HandlerDeps, listener: ListenerConfig): RequestHandler {
  const proto = 'http'
  return function handle (req, res) {
    const scan = scanRequestHeaders(req.rawHeaders, listener.trustForwarded)
    try {
      const rt = deps.current()
      const method = req.method ?? 'GET'
      const target = originForm(req.url ?? '/')
      if (target === null) {
        sendProblem(res, ERRORS.BAD_REQUEST, { requestId: scan.requestId, detail: 'the request target must be a path like /orders/1' })
        return
      }
      const route = findRoute(rt.routes, method, target, scan.host, req.rawHeaders)
      if (route === null) {
        sendProblem(res, ERRORS.ROUTE_NOT_FOUND, { requestId: scan.requestId, detail: `no route matches ${method} ${pathOnly(target)}` })
        return
      }
      const upstream = route.pick()
      if (upstream === null) {
        sendProblem(res, ERRORS.NO_HEALTHY_UPSTREAM, { requestId: scan.requestId, route: route.config.name, retryAfterSeconds: retryAfter(route, deps.clock.now()) })
        return
      }
      const cfg = route.config
      const rest = cfg.stripPrefix ? stripPrefix(target, cfg.pathPrefix) : target
      const path = upstream.config.basePath === '' ? rest : upstream.config.basePath + rest
      const headers = addForwardingHeaders(scan, req.socket.remoteAddress ?? '', proto, cfg.preserveHost ? null : upstream.config.hostHeader)
      new Exchange(deps, res, route, upstream, scan.requestId).start(req, path, headers, scan.hasBody)
    } catch (err) {
      deps.onInternalError(err, scan.requestId)
      sendProblem(res, ERRORS.INTERNAL, { requestId: scan.requestId })
    }
  }
}

function findRoute (routes: readonly RuntimeRoute[], method: string, path: string, host: string, raw: readonly string[]): RuntimeRoute | null {
  for (const r of routes) {
    if (routeMatches(r.config, method, path, host, raw)) return r
  }
  return null
}

/** Path and query of the request; absolute-form targets (proxy style) are reduced to it. */
function originForm (url: string): string | null {
  if (url.charCodeAt(0) === 47 /* / */) return url
  try {
    const u = new URL(url)
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.pathname + u.search : null
  } catch {
    return null
  }
}

function stripPrefix (target: string, prefix: string): string {
  const rest = target.slice(prefix.length)
  return rest.charCodeAt(0) === 47 ? rest : '/' + rest
}

function pathOnly (target: string): string {
  const q = target.indexOf('?')
  const p = q === -1 ? target : target.slice(0, q)
  return p.length > 200 ? p.slice(0, 200) + '…' : p
}

/** Seconds until the first upstream of the route may take traffic again (at least 1). */
function retryAfter (route: RuntimeRoute, now: number): number {
  let best = Infinity
  for (const u of route.upstreams) {
    if (u.weight <= 0) continue
    const ms = u.health.retryAfterMs(now)
    if (ms !== null && ms < best) best = ms
  }
  return best === Infinity ? 1 : Math.max(1, Math.ceil(best / 1000))
}
