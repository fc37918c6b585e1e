/**
 * A public listener: a node:http server bound to one address, with
 * malformed requests answered as problem documents, and a drain mode for
 * graceful shutdown (stop accepting, let in-flight requests finish, close
 * keep-alive connections as their responses end).
 */
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { ERRORS } from '../core/errors.js'
import type { ListenerConfig } from '../policy/snapshot.js'
import { problemBody } from './problem.js'
import type { RequestHandler } from './handler.js'

export class Listener {
  readonly config: ListenerConfig
  readonly #server: Server
  #inflight = 0
  #draining = false
  #idle: Array<() => void> = []

  constructor (config: ListenerConfig, handler: RequestHandler) {
    this.config = config
    this.#server = createServer({ keepAliveTimeout: 5000 }, (req: IncomingMessage, res: ServerResponse) => {
      this.#inflight++
      res.on('close', this.#onResponseClose)
      // While draining, tell keep-alive clients to go (Node adds "Connection: close").
      if (this.#draining) res.shouldKeepAlive = false
      handler(req, res)
    })
    this.#server.on('clientError', onClientError)
  }

  get inflight (): number { return this.#inflight }

  async listen (): Promise<{ host: string, port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(this.config.port, this.config.host, () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
    return this.address()
  }

  address (): { host: string, port: number } {
    const a = this.#server.address()
    return typeof a === 'object' && a !== null ? { host: a.address, port: a.port } : { host: this.config.host, port: this.config.port }
  }

  /** Stop accepting; resolves when in-flight requests are done or `timeoutMs` passed (then their sockets are closed). */
  async drain (timeoutMs: number): Promise<{ forced: number }> {
    this.#draining = true
    const closed = new Promise<void>(resolve => this.#server.close(() => resolve()))
    this.#server.closeIdleConnections()
    let forced = 0
    if (this.#inflight > 0) {
      const idle = new Promise<void>(resolve => this.#idle.push(resolve))
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), timeoutMs) })
      if (await Promise.race([idle, timeout]) === 'timeout') forced = this.#inflight
      clearTimeout(timer)
    }
    this.#server.closeAllConnections()
    await closed
    return { forced }
  }

  readonly #onResponseClose = (): void => {
    this.#inflight--
    if (this.#draining) {
      this.#server.closeIdleConnections()
      if (this.#inflight === 0) for (const resolve of this.#idle.splice(0)) resolve()
    }
  }
}

function onClientError (err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy()
    return
  }
  const spec = err.code === 'HPE_HEADER_OVERFLOW' ? ERRORS.HEADERS_TOO_LARGE : ERRORS.BAD_REQUEST
  const requestId = randomUUID()
  const body = problemBody(spec, { requestId, detail: 'the request could not be parsed as HTTP/1.1' })
  socket.end(`HTTP/1.1 ${spec.status} ${spec.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
    `content-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-gateway-error: ${spec.code}\r\n` +
    `x-request-id: ${requestId}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`)
}
