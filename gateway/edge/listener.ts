/**
 * A public listener: a node:http server bound to one address, with the
 * client-side limits of the policy (header count and bytes, request-head
 * timeout, keep-alive idle time, connection cap), malformed or too slow
 * requests answered as problem documents, and a drain mode for graceful
 * shutdown (stop accepting, let in-flight requests finish, close keep-alive
 * connections as their responses end).
 */
import { createServer, type Server, type IncomingMessage, type ServerResponse, type ServerOptions } from 'node:http'
import type { Server as TlsServer } from 'node:tls'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { randomUUID } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import { ERRORS } from '../core/errors.js'
import type { ListenerConfig, ListenerTlsConfig } from '../policy/snapshot.js'
import { TlsContexts } from './tls-contexts.js'
import { buildFront, type Front } from './front.js'
import { adaptH2Request } from './h2.js'
import { endSocketWithProblem } from './problem.js'
import { ConnectionGate } from './connections.js'
import { expectContinue } from './continue.js'
import { ResponseTally } from '../core/response-tally.js'
import { recordResponse, releaseSlots, tagResponse } from './response-tag.js'
import type { AccessLog } from './access-log.js'

/** Serves one request (the proxy's handler). */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void

/** Takes requests node:http hands over as raw sockets: `Upgrade` requests and `CONNECT`. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

export class Listener {
  readonly config: ListenerConfig
  /** The HTTP/1.1 server; it binds the port itself unless there is a front. */
  readonly #server: Server
  /** TLS and/or h2c: the server that binds the port and hands connections on (front.ts). */
  readonly #front: Front | null
  /** TLS listeners: the certificates by SNI (replaced on reload). */
  readonly #tls: TlsContexts | null
  /** Handshakes that failed (bad client certificate, no shared version, a port scan). */
  #tlsFailures = 0
  #inflight = 0
  #draining = false
  #idle: Array<() => void> = []
  readonly #gate: ConnectionGate
  /** Sockets handed to the upgrade handler (tunnels and their handshakes): drain ends them. */
  readonly #tunnels = new Set<Duplex>()
  /** Responses to requests no route took (refused at the edge, no route, unparsable). */
  readonly unrouted = new ResponseTally()
  /** Set by the composition root from the policy's accessLog block (swapped on reload). */
  accessLog: AccessLog | null = null

  constructor (config: ListenerConfig, handler: RequestHandler, upgrade: UpgradeHandler | null = null) {
    this.config = config
    const t = config.timeouts
    const gate = this.#gate = new ConnectionGate(config.limits.maxConnections)
    // One listener function for every response ('close' passes none, `this` is the response).
    const self = this
    const onResponseClose = function (this: ServerResponse): void { self.#responseClosed(this) }
    const tls = this.#tls = config.tls === null ? null : new TlsContexts(config.tls)
    const onRequest = (req: IncomingMessage, res: ServerResponse, socket: Socket = req.socket): void => {
      if (gate.isRefused(socket)) {
        res.destroy()
        return
      }
      // An upstream's own Strict-Transport-Security wins (writeHead's headers replace these).
      if (tls !== null && tls.config.hsts !== null) res.setHeader('strict-transport-security', tls.config.hsts)
      this.#inflight++
      tagResponse(res, performance.now(), this.unrouted)
      gate.begin(socket, res)
      res.on('close', onResponseClose)
      // While draining, tell keep-alive clients to go (Node adds "Connection: close").
      if (this.#draining) res.shouldKeepAlive = false
      handler(req, res)
    }
    const options: ServerOptions = {
      keepAliveTimeout: t.keepAliveMs,
      // node:http answers a request head that takes longer with 408 (see
      // onClientError); bodies are watched by upload-guard.ts instead of
      // node's whole-request timer, which would also cut fast large uploads.
      headersTimeout: t.requestHeadersMs,
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1000, t.requestHeadersMs),
      maxHeaderSize: config.limits.maxHeaderBytes,
      // admit.ts answers a missing Host with a coded problem (node's own 400 has none).
      requireHostHeader: false
    }
    this.#server = createServer(options, (req, res) => { onRequest(req, res) })
    // One more than the limit, so that reaching it shows headers were dropped (admit.ts).
    this.#server.maxHeadersCount = config.limits.maxHeaderCount + 1
    if (tls === null && !config.http2) {
      this.#server.on('connection', gate.onConnection)
      this.#front = null
    } else {
      // TLS connections are counted once their handshake is done: that is the socket requests arrive on.
      this.#front = buildFront(config, this.#server, tls, gate, {
        onH2Request: (req: Http2ServerRequest, res: Http2ServerResponse, socket: Socket) => {
          adaptH2Request(req, res, socket)
          onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse, socket)
        },
        onTlsFailure: () => { this.#tlsFailures++ }
      })
    }
    // Expect: 100-continue: the handler sends the 100 only once it will read the body.
    this.#server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      expectContinue(res)
      onRequest(req, res)
    })
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => { onClientError(err, socket, this.unrouted) })
    if (upgrade !== null) {
      const take: UpgradeHandler = (req, socket, head) => {
        if (gate.isRefused(socket as Socket)) {
          socket.destroy()
          return
        }
        gate.hold(socket as Socket) // a tunnel is never an idle connection to evict
        this.#tunnels.add(socket)
        socket.once('close', () => this.#tunnels.delete(socket))
        upgrade(req, socket, head)
      }
      this.#server.on('upgrade', take)
      this.#server.on('connect', take)
    }
  }

  get inflight (): number { return this.#inflight }
  /** Whether clients talk TLS here, and with what (for /status; never key material). */
  get tls (): object | null {
    const c = this.#tls?.config
    if (c === undefined) return null
    return {
      minVersion: c.minVersion,
      certificates: c.certificates.map(x => ({ names: x.names, subject: x.subject, notAfter: x.notAfter, cert: x.files.cert })),
      clientAuth: c.clientAuth === null ? null : { mode: c.clientAuth.mode, ca: c.clientAuth.file },
      hsts: c.hsts,
      handshakeFailures: this.#tlsFailures
    }
  }

  /**
   * A reload with new certificate files: the next handshakes use them,
   * open connections keep theirs. Whether TLS is on and clientAuth.mode
   * are bound at start (reload.ts refuses to change them).
   */
  updateTls (config: ListenerTlsConfig | null): void {
    if (this.#tls === null || config === null || config.id === this.#tls.config.id) return
    ;(this.#front?.server as TlsServer).setSecureContext(this.#tls.update(config))
  }
  /** Client connections: open now, closed to make room at the cap, refused at the cap. */
  get connections (): { open: number, evicted: number, refused: number } {
    return { open: this.#gate.open, evicted: this.#gate.evicted, refused: this.#gate.refused }
  }

  async listen (): Promise<{ host: string, port: number }> {
    const bound = this.#front?.server ?? this.#server
    await new Promise<void>((resolve, reject) => {
      bound.once('error', reject)
      bound.listen(this.config.port, this.config.host, () => {
        bound.off('error', reject)
        resolve()
      })
    })
    // node:http starts its request-head timer sweep when it starts listening; behind a front it never does itself.
    if (bound !== this.#server) this.#server.emit('listening')
    return this.address()
  }

  address (): { host: string, port: number } {
    const a = (this.#front?.server ?? this.#server).address()
    return typeof a === 'object' && a !== null ? { host: a.address, port: a.port } : { host: this.config.host, port: this.config.port }
  }

  /** Stop accepting; resolves when in-flight requests are done or `timeoutMs` passed (then their sockets are closed). */
  async drain (timeoutMs: number): Promise<{ forced: number }> {
    this.#draining = true
    const front = this.#front
    // Behind a front the HTTP/1.1 server is not bound: closing it only stops its timer sweep.
    const closed = new Promise<void>(resolve => (front?.server ?? this.#server).close(() => resolve()))
    if (front !== null) this.#server.close(() => {})
    this.#server.closeIdleConnections()
    // HTTP/2: GOAWAY; streams under way finish, no new ones start.
    for (const s of front?.sessions ?? []) s.close()
    let forced = 0
    if (this.#inflight > 0) {
      const idle = new Promise<void>(resolve => this.#idle.push(resolve))
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), timeoutMs) })
      if (await Promise.race([idle, timeout]) === 'timeout') forced = this.#inflight
      clearTimeout(timer)
    }
    this.#server.closeAllConnections()
    for (const s of front?.sessions ?? []) s.destroy()
    for (const s of this.#tunnels) s.destroy()
    await closed
    return { forced }
  }

  #responseClosed (res: ServerResponse): void {
    this.#inflight--
    const now = performance.now()
    recordResponse(res, now)
    releaseSlots(res, now)
    if (this.accessLog !== null) {
      try { this.accessLog.write(res, this.config.name, now) } catch { /* a log line is never worth a request */ }
    }
    this.#gate.done(res)
    if (this.#draining) {
      this.#server.closeIdleConnections()
      if (this.#inflight === 0) for (const resolve of this.#idle.splice(0)) resolve()
    }
  }
}

function onClientError (err: NodeJS.ErrnoException, socket: Duplex, tally: ResponseTally): void {
  // A response already under way cannot be replaced by an error answer.
  const started = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true
  if (err.code === 'ECONNRESET' || !socket.writable || started) {
    socket.destroy()
    return
  }
  const spec = err.code === 'HPE_HEADER_OVERFLOW'
    ? ERRORS.HEADERS_TOO_LARGE
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? ERRORS.REQUEST_TIMEOUT
      : err.code === 'HPE_INVALID_VERSION' ? ERRORS.HTTP_VERSION_NOT_SUPPORTED : ERRORS.BAD_REQUEST
  const detail = spec === ERRORS.REQUEST_TIMEOUT
    ? 'the request line and headers did not arrive within the listener\'s requestHeaders timeout'
    : spec === ERRORS.HEADERS_TOO_LARGE ? 'the request line and headers exceed the listener\'s maxHeaderSize' : 'the request could not be parsed as HTTP/1.1'
  tally.record(spec.status, true, spec.code, null)
  endSocketWithProblem(socket, spec, { requestId: randomUUID(), detail })
}
