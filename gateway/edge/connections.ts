/**
 * The client connections of one listener, with a cap. Like NGINX running
 * out of worker_connections, a listener at its cap closes an idle
 * connection to make room, so an idle-connection flood cannot lock real
 * clients out; only when every connection is busy with a request is the
 * newcomer answered 503 and closed.
 *
 * Which idle connection goes first matters: a flood is made of connections
 * that never complete a request, while a real client's keep-alive
 * connection has served requests and is merely quiet between two. So the
 * victims are, in order: connections that have not yet started a request
 * (oldest first: a flood's, or a slowloris still sending its head), then
 * keep-alive connections between requests, least recently used first.
 * Connections busy with a request, and sockets handed over to a tunnel,
 * are never closed to make room.
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
  /** Connections that have not started a request yet, oldest first. */
  readonly #fresh = new Set<Tracked>()
  /** Keep-alive connections between requests, least recently used first. */
  readonly #idle = new Set<Tracked>()
  #open = 0
  #evicted = 0
  #refused = 0

  constructor (max: number) {
    this.#max = max
  }

  get open (): number { return this.#open }
  get evicted (): number { return this.#evicted }
  get refused (): number { return this.#refused }

  /** A new connection: admitted (tracked until it closes), or answered 503 and closed (HTTP/2, `answer` false: closed). */
  readonly onConnection = (socket: Socket, answer = true): void => {
    if (this.#open >= this.#max && !this.#evictOne()) {
      this.#refused++
      // node:http has already attached its parser: a request that arrives
      // before the close must not be served (see isRefused).
      ;(socket as Tracked)[REFUSED] = true
      socket.on('error', () => {})
      if (!answer) {
        socket.destroy()
        return
      }
      endSocketWithProblem(socket, ERRORS.TOO_MANY_CONNECTIONS, { requestId: randomUUID(), detail: 'the listener is at its connection limit', retryAfterSeconds: 1 })
      return
    }
    const s = socket as Tracked
    s[BUSY] = 0
    this.#open++
    this.#fresh.add(s)
    socket.once('close', () => {
      this.#open--
      this.#fresh.delete(s)
      this.#idle.delete(s)
    })
  }

  /** The connection was refused at the cap: its requests are dropped unanswered (the 503 is already on the wire). */
  isRefused (socket: Socket): boolean {
    return (socket as Tracked)[REFUSED] === true
  }

  /** A request started on `socket`; `done(res)` ends it (the response loses its socket on close, so it keeps it here). */
  begin (socket: Socket, res?: object): void {
    const s = socket as Tracked
    s[BUSY] = (s[BUSY] ?? 0) + 1
    if (s[BUSY] === 1 && !this.#fresh.delete(s)) this.#idle.delete(s)
    if (res !== undefined) (res as { [SOCKET]?: Socket })[SOCKET] = socket
  }

  done (res: object): void {
    const s = (res as { [SOCKET]?: Tracked })[SOCKET]
    if (s === undefined) return
    s[BUSY] = Math.max(0, (s[BUSY] ?? 1) - 1)
    // Between requests now: the most recently used end of the idle list.
    if (s[BUSY] === 0 && !s.destroyed) this.#idle.add(s)
  }

  /** Sockets handed over for a tunnel (WebSocket): busy until they close. */
  hold (socket: Socket): void {
    this.begin(socket)
  }

  #evictOne (): boolean {
    const victim = first(this.#fresh) ?? first(this.#idle)
    if (victim === undefined) return false
    this.#fresh.delete(victim)
    this.#idle.delete(victim)
    this.#evicted++
    victim.destroy()
    return true
  }
}

function first<T> (set: Set<T>): T | undefined {
  for (const v of set) return v
  return undefined
}
