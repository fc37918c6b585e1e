/**
 * The client connections of one listener, with a cap. Like NGINX running
 * out of worker_connections, a listener at its cap first closes the oldest
 * idle connection (keep-alive between requests, or one that has not yet
 * sent a complete request head) to make room, so an idle-connection flood
 * cannot lock out real clients; only when every connection is busy with a
 * request is the newcomer answered 503 and closed.
 */
import type { Socket } from 'node:net'
import { randomUUID } from 'node:crypto'
import { ERRORS } from '../core/errors.js'
import { endSocketWithProblem } from './problem.js'

const BUSY = Symbol('gateway.busyRequests')
const REFUSED = Symbol('gateway.refused')
const SOCKET = Symbol('gateway.requestSocket')

type Tracked = Socket & { [BUSY]?: number, [REFUSED]?: true }

export class ConnectionGate {
  readonly #max: number
  /** Insertion order = oldest first. */
  readonly #open = new Set<Tracked>()
  #evicted = 0
  #refused = 0

  constructor (max: number) {
    this.#max = max
  }

  get open (): number { return this.#open.size }
  get evicted (): number { return this.#evicted }
  get refused (): number { return this.#refused }

  /** A new connection: admitted (tracked until it closes), or answered 503 and closed. */
  readonly onConnection = (socket: Socket): void => {
    if (this.#open.size >= this.#max && !this.#evictIdle()) {
      this.#refused++
      // node:http has already attached its parser: a request that arrives
      // before the close must not be served (see isRefused).
      ;(socket as Tracked)[REFUSED] = true
      socket.on('error', () => {})
      endSocketWithProblem(socket, ERRORS.TOO_MANY_CONNECTIONS, { requestId: randomUUID(), detail: 'the listener is at its connection limit', retryAfterSeconds: 1 })
      return
    }
    const s = socket as Tracked
    s[BUSY] = 0
    this.#open.add(s)
    socket.once('close', () => this.#open.delete(s))
  }

  /** The connection was refused at the cap: its requests are dropped unanswered (the 503 is already on the wire). */
  isRefused (socket: Socket): boolean {
    return (socket as Tracked)[REFUSED] === true
  }

  /** A request started on `socket`; `done(res)` ends it (the response loses its socket on close, so it keeps it here). */
  begin (socket: Socket, res?: object): void {
    const s = socket as Tracked
    s[BUSY] = (s[BUSY] ?? 0) + 1
    if (res !== undefined) (res as { [SOCKET]?: Socket })[SOCKET] = socket
  }

  done (res: object): void {
    const s = (res as { [SOCKET]?: Tracked })[SOCKET]
    if (s !== undefined) s[BUSY] = Math.max(0, (s[BUSY] ?? 1) - 1)
  }

  /** Sockets handed over for a tunnel (WebSocket): they count as busy until they close. */
  hold (socket: Socket): void {
    this.begin(socket)
  }

  #evictIdle (): boolean {
    for (const s of this.#open) {
      if ((s[BUSY] ?? 0) === 0) {
        this.#open.delete(s)
        this.#evicted++
        s.destroy()
        return true
      }
    }
    return false
  }
}
