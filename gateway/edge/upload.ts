/**
 * A request body on its way in: watched for slowness (upload-guard.ts),
 * held to the route's maxBodySize, and a way to end the exchange with the
 * client's fault (408, 413) whether or not an upstream attempt has started.
 *
 * A declared Content-Length over the limit never gets here (the handler
 * answers 413 first). A chunked body is counted through a small Transform,
 * which undici reads instead of the request itself: cutting it at the limit
 * aborts the upstream attempt with an incomplete body (so the upstream never
 * receives a complete request) without destroying the client's socket
 * before its 413 is written.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { ERRORS, type ErrorSpec } from '../core/errors.js'
import { sendProblem } from './problem.js'
import { sendContinue } from './continue.js'
import type { BodyLimits, UploadGuard } from './upload-guard.js'

/** What can end a request on the client's account. ProxyRequest implements it once it exists. */
export interface ClientFaultSink {
  failClient (spec: ErrorSpec, detail: string): void
}

/** Ends the exchange for a client fault: through the ProxyRequest once there is one, else directly. */
export class ClientFault implements ClientFaultSink {
  sink: ClientFaultSink | null = null
  readonly #res: ServerResponse
  readonly #requestId: string
  readonly #route: string
  #failed = false

  constructor (res: ServerResponse, requestId: string, route: string) {
    this.#res = res
    this.#requestId = requestId
    this.#route = route
  }

  get failed (): boolean { return this.#failed }

  failClient (spec: ErrorSpec, detail: string): void {
    if (this.#failed) return
    this.#failed = true
    if (this.sink !== null) return this.sink.failClient(spec, detail)
    this.#res.shouldKeepAlive = false
    sendProblem(this.#res, spec, { requestId: this.#requestId, route: this.#route, detail })
  }
}

/** The gateway is about to read `req`'s body: watch it for slowness and ask a waiting `Expect: 100-continue` client for it. */
export function startReading (req: IncomingMessage, res: ServerResponse, guard: UploadGuard, limits: BodyLimits, fault: ClientFault): void {
  guard.watch(req, limits, detail => fault.failClient(ERRORS.REQUEST_TIMEOUT, detail))
  sendContinue(res)
}

/**
 * startReading, then the stream to forward: req itself, or a counting
 * stream for a body without Content-Length.
 */
export function acceptBody (req: IncomingMessage, res: ServerResponse, sized: boolean, maxBytes: number,
  guard: UploadGuard, limits: BodyLimits, fault: ClientFault): Readable {
  startReading(req, res, guard, limits, fault)
  if (sized) return req
  const counted = new CappedBody(maxBytes, () => fault.failClient(ERRORS.BODY_TOO_LARGE, `the request body is larger than the route's maxBodySize of ${maxBytes} bytes`))
  req.on('error', err => counted.destroy(err))
  req.on('aborted', () => counted.destroy(new Error('client aborted the request body')))
  return req.pipe(counted)
}

class CappedBody extends Transform {
  readonly #max: number
  readonly #onTooLarge: () => void
  #bytes = 0

  constructor (max: number, onTooLarge: () => void) {
    super()
    this.#max = max
    this.#onTooLarge = onTooLarge
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#bytes += chunk.length
    if (this.#bytes > this.#max) {
      // The client is answered first; the error then aborts the upstream
      // attempt mid-body (its owner has already discarded it).
      this.#onTooLarge()
      done(new Error('request body over maxBodySize'))
      return
    }
    done(null, chunk)
  }
}
