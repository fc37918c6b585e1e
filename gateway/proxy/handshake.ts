/**
 * One WebSocket handshake with one upstream, through undici's own upgrade
 * support (a dispatch with `upgrade`, the legacy handler API as in
 * attempt.ts): the pool's connect timeout applies, and the route's
 * responseHeaders timeout bounds the wait for the answer. It reports the
 * outcome into the upstream's OutcomeSink exactly once, like an Attempt, so
 * breakers and outlier ejection see failed handshakes.
 *
 * - 101: the switch is written to the client and the tunnel takes both sockets;
 * - any other answer (400, 403, 404, 426…): passed back as it is, then closed;
 * - no answer: a problem document (502 connect/reset, 504 timeout), then closed.
 */
import type { Duplex } from 'node:stream'
import { STATUS_CODES } from 'node:http'
import type { Dispatcher } from 'undici'
import type { ErrorSpec } from '../core/errors.js'
import type { Linked, LinkedList } from '../core/linked-list.js'
import { OUTCOME_INDEX, statusOutcome, type InflightAttempt } from '../health/outcome.js'
import type { BreakerTicket } from '../health/breaker.js'
import { transportFailure } from '../delivery/failure.js'
import type { HandlerDeps } from './deps.js'
import type { RuntimeRoute, RuntimeUpstream } from './runtime.js'
import { responseHeaders } from './headers.js'
import { classifyUpstreamError } from './upstream-errors.js'
import { endSocketWithProblem, type ProblemContext } from '../edge/problem.js'
import { openTunnel } from './tunnel.js'

/** Bytes a client may send before the upstream has switched (WebSocket clients send none). */
const MAX_EARLY_BYTES = 64 * 1024
/** How long a refused client socket is kept for the peer to read the answer and close. */
const LINGER_MS = 5000

export interface HandshakeSpec {
  readonly method: string
  /** Upstream path (base path and stripPrefix applied). */
  readonly path: string
  /** Forwarded headers, Host included; undici adds Connection/Upgrade itself. */
  readonly headers: string[]
  /** The client's Upgrade value (websocket). */
  readonly protocol: string
  readonly requestId: string
  /** Bytes node:http read past the request head. */
  readonly head: Buffer
}

class Discarded extends Error {}

export class Handshake implements Dispatcher.DispatchHandler, InflightAttempt {
  readonly startedAt: number
  listPrev: Linked | null = null
  listNext: Linked | null = null
  listOwner: LinkedList<Linked> | null = null
  readonly #deps: HandlerDeps
  readonly #client: Duplex
  readonly #route: RuntimeRoute
  readonly #upstream: RuntimeUpstream
  readonly #spec: HandshakeSpec
  readonly #early: Buffer[] = []
  #earlyBytes = 0
  #abort: ((err?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #ticket: BreakerTicket | null = null
  #connected = false
  #recorded = false
  /** Finished, or the client left: undici's later callbacks are ignored. */
  #done = false
  /** An upstream refusal is being passed back. */
  #answering = false

  constructor (deps: HandlerDeps, client: Duplex, route: RuntimeRoute, upstream: RuntimeUpstream, spec: HandshakeSpec) {
    this.startedAt = deps.clock.now()
    this.#deps = deps
    this.#client = client
    this.#route = route
    this.#upstream = upstream
    this.#spec = spec
  }

  start (): void {
    const u = this.#upstream
    this.#ticket = u.sink.begin(this)
    this.#client.on('data', this.#onClientData)
    this.#client.on('end', this.#onClientGone)
    this.#client.on('close', this.#onClientGone)
    const t = this.#route.config.timeouts
    u.pool.dispatch({
      path: this.#spec.path,
      method: this.#spec.method as Dispatcher.HttpMethod,
      headers: this.#spec.headers,
      upgrade: this.#spec.protocol,
      headersTimeout: Math.min(t.responseHeadersMs, t.attemptMs > 0 ? t.attemptMs : Infinity),
      bodyTimeout: t.bodyIdleMs
    }, this)
  }

  onConnect (abort: (err?: Error) => void): void {
    this.#abort = abort
    if (this.#done) abort(new Discarded('client left'))
    else this.#connected = true
  }

  onUpgrade (statusCode: number, raw: Buffer[] | string[] | null, socket: Duplex): void {
    if (this.#done) {
      socket.destroy()
      return
    }
    this.#done = true
    this.#record(OUTCOME_INDEX['2xx'], statusCode)
    this.#detach()
    const counters = this.#route.delivery.upgrades
    counters.upgraded++
    counters.active++
    const { headers } = responseHeaders(toBuffers(raw), this.#spec.requestId, this.#upstream.name)
    const upgrade = headerOf(raw, 'upgrade') ?? this.#spec.protocol
    this.#client.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${upgrade}\r\n${headerLines(headers)}\r\n`)
    if (this.#spec.head.length > 0) socket.write(this.#spec.head)
    for (const chunk of this.#early) socket.write(chunk)
    openTunnel(this.#client, socket, {
      idleMs: this.#route.config.websocket.idleTimeoutMs,
      now: () => this.#deps.clock.now(),
      onClose: how => {
        counters.active--
        if (how === 'idle') counters.idleClosed++
      }
    })
  }

  onHeaders (statusCode: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.#done) return false
    if (statusCode < 200) return true // interim; a 101 goes to onUpgrade
    this.#record(statusOutcome(statusCode), statusCode)
    this.#route.delivery.upgrades.refused++
    this.#answering = true
    this.#resume = resume
    this.#client.off('data', this.#onClientData)
    const { headers } = responseHeaders(raw, this.#spec.requestId, this.#upstream.name)
    const reason = /^[\t\x20-\x7e]*$/.test(statusText) && statusText !== '' ? statusText : (STATUS_CODES[statusCode] ?? '')
    // Close-delimited unless the upstream sized its body: the connection ends with it.
    this.#client.write(`HTTP/1.1 ${statusCode} ${reason}\r\n${headerLines(headers)}connection: close\r\n\r\n`)
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#done) return true
    if (this.#client.write(chunk)) return true
    this.#client.once('drain', () => this.#resume?.())
    return false
  }

  onComplete (): void {
    if (this.#done) return
    this.#done = true
    this.#detach()
    this.#client.end()
    linger(this.#client)
  }

  onError (err: Error): void {
    if (this.#done) return
    this.#done = true
    this.#detach()
    const c = classifyUpstreamError(err)
    this.#record(c.outcome, 0)
    if (this.#answering) {
      this.#client.destroy() // the refusal was cut short; its status line is already out
      return
    }
    this.#route.delivery.upgrades.failed++
    const failure = transportFailure(c, String((err as { code?: unknown }).code ?? ''), this.#connected)
    this.#deps.onAttemptFailed({ route: this.#route.config.name, upstream: this.#upstream.name, requestId: this.#spec.requestId, method: this.#spec.method, failure, decision: 'not retried: WebSocket handshake', cause: err })
    answerAndClose(this.#client, c.spec, { requestId: this.#spec.requestId, route: this.#route.config.name, upstream: this.#upstream.name, detail: c.detail })
  }

  readonly #onClientData = (chunk: Buffer): void => {
    this.#early.push(chunk)
    this.#earlyBytes += chunk.length
    if (this.#earlyBytes > MAX_EARLY_BYTES) this.#client.destroy()
  }

  /** The client closed or half-closed before the switch: give up the handshake. */
  readonly #onClientGone = (): void => {
    if (this.#done) return
    this.#done = true
    this.#detach()
    this.#client.destroy()
    this.#record(OUTCOME_INDEX.aborted, 0)
    this.#abort?.(new Discarded('client left'))
  }

  #detach (): void {
    this.#client.off('data', this.#onClientData)
    this.#client.off('end', this.#onClientGone)
    this.#client.off('close', this.#onClientGone)
  }

  #record (outcome: number, status: number): void {
    if (this.#recorded) return
    this.#recorded = true
    this.#upstream.sink.end(this, this.#ticket, outcome, outcome !== OUTCOME_INDEX.aborted, status)
  }
}

/** A gateway problem on a handed-over socket, then let the peer read it and close. */
export function answerAndClose (socket: Duplex, spec: ErrorSpec, ctx: ProblemContext): void {
  if (socket.destroyed || socket.writableEnded) {
    socket.destroy()
    return
  }
  endSocketWithProblem(socket, spec, ctx)
  linger(socket)
}

/** Read (and drop) what the peer still sends so its FIN closes the socket; destroy it after LINGER_MS anyway. */
function linger (socket: Duplex): void {
  socket.resume()
  setTimeout(() => socket.destroy(), LINGER_MS).unref()
}

function headerLines (flat: readonly string[]): string {
  let text = ''
  for (let i = 0; i < flat.length; i += 2) text += `${flat[i] as string}: ${flat[i + 1] as string}\r\n`
  return text
}

function toBuffers (raw: Buffer[] | string[] | null): Buffer[] {
  if (raw === null) return []
  return raw.map(h => typeof h === 'string' ? Buffer.from(h, 'latin1') : h)
}

function headerOf (raw: Buffer[] | string[] | null, lower: string): string | null {
  if (raw === null) return null
  for (let i = 0; i < raw.length; i += 2) {
    if (text(raw[i]).toLowerCase() === lower) return text(raw[i + 1])
  }
  return null
}

const text = (h: Buffer | string | undefined): string => typeof h === 'string' ? h : (h?.toString('latin1') ?? '')
