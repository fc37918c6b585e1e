/**
 * Requests node:http hands over as raw sockets: `Upgrade` requests and
 * `CONNECT`. A WebSocket upgrade is admitted like any request (admit.ts),
 * matched to a route on the admitted target, given an upstream by
 * `route.pick()` (breakers, ejection, health checks and priorities
 * respected) and handed to a Handshake, with the forwarding headers of a
 * normal request plus the Sec-WebSocket-* ones (undici adds
 * `Connection: upgrade` and `Upgrade` itself). Everything else is answered
 * with a problem document on the socket, which is then closed:
 * CONNECT → 501 GW_ERR_METHOD_NOT_SUPPORTED, any other protocol (h2c) or a
 * route with websocket.enabled: false → 501 GW_ERR_UPGRADE_NOT_SUPPORTED.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { ERRORS } from '../core/errors.js'
import type { ListenerConfig } from '../policy/snapshot.js'
import type { HandlerDeps } from './deps.js'
import type { UpgradeHandler } from '../edge/listener.js'
import { retryAfterSeconds } from './runtime.js'
import { admitRequest } from '../edge/admit.js'
import { clientCertHeader, forwardedProto } from '../edge/client-tls.js'
import { addForwardingHeaders, headerValue, scanRequestHeaders } from './headers.js'
import { findRoute, pathOnly, stripPrefix } from './router.js'
import { Handshake, answerAndClose } from './handshake.js'

export function createUpgradeHandler (deps: HandlerDeps, listener: ListenerConfig): UpgradeHandler {
  return function upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // node:http dropped its own listeners at the hand-over: a reset must not crash the process.
    socket.on('error', ignore)
    const scan = scanRequestHeaders(req.rawHeaders, listener.trustForwarded)
    const requestId = scan.requestId
    try {
      const method = req.method ?? 'GET'
      if (method === 'CONNECT') {
        // Before admission: its authority-form target (host:port) is no path to admit.
        answerAndClose(socket, ERRORS.METHOD_NOT_SUPPORTED, { requestId, detail: 'CONNECT tunnels are not supported: the gateway is a reverse proxy' })
        return
      }
      const admitted = admitRequest(req, listener, scan)
      if ('reject' in admitted) {
        answerAndClose(socket, admitted.reject, { requestId, detail: admitted.detail })
        return
      }
      const protocol = headerValue(req.rawHeaders, 'upgrade') ?? ''
      if (protocol.trim().toLowerCase() !== 'websocket') {
        answerAndClose(socket, ERRORS.UPGRADE_NOT_SUPPORTED, { requestId, detail: `Upgrade: ${printable(protocol)} is not supported; only websocket is tunneled` })
        return
      }
      const { target, host } = admitted
      const route = findRoute(deps.current().routes, method, target, host, req.rawHeaders)
      if (route === null) {
        answerAndClose(socket, ERRORS.ROUTE_NOT_FOUND, { requestId, detail: `no route matches ${method} ${pathOnly(target)}` })
        return
      }
      const cfg = route.config
      if (!cfg.websocket.enabled) {
        answerAndClose(socket, ERRORS.UPGRADE_NOT_SUPPORTED, { requestId, route: cfg.name, detail: `route ${cfg.name} does not take WebSocket upgrades (websocket.enabled: false)` })
        return
      }
      if (scan.hasBody) {
        // Its body would reach the upstream as tunnel bytes: refuse rather than smuggle.
        answerAndClose(socket, ERRORS.BAD_REQUEST, { requestId, route: cfg.name, detail: 'an Upgrade request must not have a body' })
        return
      }
      const upstream = route.pick()
      if (upstream === null) {
        route.delivery.upgrades.failed++
        answerAndClose(socket, ERRORS.NO_HEALTHY_UPSTREAM, { requestId, route: cfg.name, retryAfterSeconds: retryAfterSeconds(route, deps.clock.now()) })
        return
      }
      const headers = addForwardingHeaders(scan, req.socket.remoteAddress ?? '', forwardedProto(req.socket), host, clientCertHeader(req.socket))
      const u = upstream.config
      headers.push('host', u.clientHost ? (host === '' ? 'localhost' : host) : u.hostHeader)
      const path = cfg.stripPrefix ? stripPrefix(target, cfg.pathPrefix) : target
      new Handshake(deps, socket, route, upstream, {
        method,
        path: u.basePath === '' ? path : u.basePath + path,
        headers,
        protocol: protocol.trim(),
        requestId,
        head
      }).start()
    } catch (err) {
      deps.onInternalError(err, requestId)
      answerAndClose(socket, ERRORS.INTERNAL, { requestId })
    }
  }
}

function ignore (): void {}


/** A client value fit for a problem detail: printable ASCII, at most 40 characters. */
function printable (value: string): string {
  const v = value.replace(/[^\x20-\x7e]/g, '?')
  return v.length > 40 ? v.slice(0, 40) + '…' : v
}
