/**
 * The socket a listener binds when it is more than plain HTTP/1.1: a TLS
 * server (the handshake, SNI, client certificates), or a plain one that
 * tells h2c from HTTP/1.1. Each connection it accepts goes to the
 * connection cap, then to the HTTP/1.1 server (node:http, never bound
 * itself, so every HTTP/1.1 limit and timeout stays what it is on a plain
 * listener) or to the HTTP/2 server (node:http2, by ALPN `h2` or the h2c
 * preface). Both serve the same request handler.
 */
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net'
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls'
import { createServer as createH2Server, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2'
import type { Server } from 'node:http'
import type { ListenerConfig, ListenerTlsConfig } from '../policy/snapshot.js'
import type { ConnectionGate } from './connections.js'
import type { TlsContexts } from './tls-contexts.js'
import { sniffH2c } from './h2.js'

export interface Front {
  readonly server: NetServer | TlsServer
  /** HTTP/2 sessions open now (drain sends them GOAWAY). */
  readonly sessions: Set<ServerHttp2Session>
}

export interface FrontHooks {
  /** An HTTP/2 request, with the connection's socket (the compat API only gives a proxy of it). */
  readonly onH2Request: (req: Http2ServerRequest, res: Http2ServerResponse, socket: Socket) => void
  readonly onTlsFailure: () => void
}

export function buildFront (config: ListenerConfig, h1: Server, tls: TlsContexts | null, gate: ConnectionGate, hooks: FrontHooks): Front {
  const t = config.timeouts
  const sessions = new Set<ServerHttp2Session>()
  const sockets = new WeakMap<ServerHttp2Session, Socket>()
  let h2: Http2Server | null = null
  let handing: Socket | null = null
  if (config.http2) {
    h2 = createH2Server({
      settings: { maxConcurrentStreams: config.limits.maxConcurrentStreams, maxHeaderListSize: config.limits.maxHeaderBytes, enablePush: false },
      // The pseudo-headers count too; one more than the limit shows fields were dropped (admit.ts).
      maxHeaderListPairs: config.limits.maxHeaderCount + 5
    })
    h2.on('session', (session: ServerHttp2Session) => {
      if (handing !== null) sockets.set(session, handing)
      sessions.add(session)
      session.once('close', () => sessions.delete(session))
      // Keep-alive idle time, as for HTTP/1.1 (a session with open streams is not idle).
      session.setTimeout(t.keepAliveMs, () => { session.close() })
      session.on('error', () => {})
    })
    const onStream = (req: Http2ServerRequest, res: Http2ServerResponse): void => {
      const socket = sockets.get(req.stream.session as ServerHttp2Session)
      if (socket === undefined) {
        res.stream.close()
        return
      }
      hooks.onH2Request(req, res, socket)
    }
    h2.on('request', onStream)
    h2.on('checkContinue', onStream)
    // CONNECT over HTTP/2 (RFC 9113 §8.5) goes through the edge like any request, which refuses it (admit.ts).
    h2.on('connect', onStream)
  }
  const hand = (socket: Socket, useH2: boolean): void => {
    // At the cap an HTTP/2 client is closed: an HTTP/1.1 503 would be garbage to it.
    gate.onConnection(socket, !useH2)
    if (gate.isRefused(socket)) return
    if (useH2 && h2 !== null) {
      handing = socket
      h2.emit('connection', socket)
      handing = null
    } else {
      h1.emit('connection', socket)
    }
  }
  if (tls !== null) {
    const server = createTlsServer({
      ...tls.serverOptions(),
      ALPNProtocols: config.http2 ? ['h2', 'http/1.1'] : ['http/1.1'],
      // A handshake gets the time a request head gets (node's default is 120 s).
      handshakeTimeout: t.requestHeadersMs
    })
    server.on('secureConnection', (socket: TLSSocket) => {
      if (rejectBadPeer(socket, tls.config)) {
        hooks.onTlsFailure()
        return
      }
      hand(socket, socket.alpnProtocol === 'h2')
    })
    server.on('tlsClientError', (_err: Error, socket: TLSSocket) => {
      hooks.onTlsFailure()
      socket.destroy()
    })
    return { server, sessions }
  }
  const server = createNetServer({ pauseOnConnect: true }, socket => {
    socket.resume()
    sniffH2c(socket, t.requestHeadersMs, isH2 => { hand(socket, isH2) })
  })
  return { server, sessions }
}

/** optional client certificates: none is fine, an invalid one is refused (Envoy does the same). */
function rejectBadPeer (socket: TLSSocket, config: ListenerTlsConfig): boolean {
  if (config.clientAuth?.mode !== 'optional' || socket.authorized) return false
  const peer = socket.getPeerCertificate()
  if (peer === null || Object.keys(peer).length === 0) return false
  socket.destroy()
  return true
}
