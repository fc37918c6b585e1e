/**
 * HTTP/2 to clients, served by the HTTP/1.1 handler unchanged through
 * node:http2's compatibility API. Two things differ and are fixed here,
 * on the request object, before the handler sees it:
 * - `rawHeaders` holds the pseudo-headers (`:method`, `:path`,
 *   `:authority`, `:scheme`): they are removed, and `:authority` becomes
 *   the Host (RFC 9113 §8.3.1) when the client sent no `host` field;
 * - a body without content-length is announced as chunked would be in
 *   HTTP/1.1, so it is streamed upstream;
 * - the request is marked, so the edge admits HTTP/2.0 (an HTTP/1.x parser
 *   never yields it).
 * And h2c: on a plain listener, a connection whose first bytes are the
 * HTTP/2 connection preface is HTTP/2 with prior knowledge, anything else
 * HTTP/1.1 (Envoy's codec "AUTO").
 */
import type { Socket } from 'node:net'
import { constants, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'

const H2 = Symbol('gateway.h2')
const REMOTE = Symbol('gateway.remoteAddress')

/** Response header names HTTP/2 forbids (RFC 9113 §8.2.2): node throws on them. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings'])
/** Names node's HTTP/2 takes once only (it throws on a second value); the first one is kept, as most HTTP/1.1 clients do. */
const SINGLE_VALUE = new Set(['access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'age', 'authorization',
  'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date', 'dnt', 'etag',
  'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified', 'location',
  'max-forwards', 'proxy-authorization', 'range', 'referer', 'retry-after', 'tk', 'upgrade-insecure-requests', 'user-agent', 'x-content-type-options'])

/**
 * Prepares an HTTP/2 request and its response for the HTTP/1.1 handler
 * (see above). On the response, what HTTP/1.1 code relies on is given its
 * HTTP/2 meaning:
 * - `shouldKeepAlive = false` ("close after this answer", e.g. a refused
 *   body): once the response is flushed the stream is closed with
 *   NO_ERROR (RFC 9113 §8.1) and the rest of the body discarded;
 * - `destroy()` (a response cut mid-body) resets the stream with
 *   INTERNAL_ERROR, so the client sees it cut (node's default, NO_ERROR,
 *   would let an unsized body look complete);
 * - `destroyed` says whether the stream is gone;
 * - `writeHead` drops connection-specific fields and keeps the first of
 *   repeated single-value ones, which node's HTTP/2 would throw on;
 * and the client's address is kept (the compat socket stops giving it
 * once the stream has closed, when the access log is written).
 */
export function adaptH2Request (req: Http2ServerRequest, res: Http2ServerResponse, socket: Socket): void {
  const raw = req.rawHeaders
  const out: string[] = []
  let authority: string | null = null
  let host = false
  let sized = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':authority') authority = raw[i + 1] as string
      continue
    }
    if (name === 'host') host = true
    else if (name === 'content-length') sized = true
    out.push(name, raw[i + 1] as string)
  }
  if (!host && authority !== null) out.unshift('host', authority)
  // A body without a length comes as DATA frames until END_STREAM: what
  // chunked is in HTTP/1.1 (hop-by-hop, so it is never forwarded as such).
  if (!sized && !req.stream.endAfterHeaders) out.push('transfer-encoding', 'chunked')
  Object.defineProperty(req, 'rawHeaders', { value: out, configurable: true })
  ;(req as unknown as { [H2]: true, [REMOTE]: string | undefined })[H2] = true
  ;(req as unknown as { [REMOTE]: string | undefined })[REMOTE] = socket.remoteAddress
  ;(res as unknown as { [H2]?: true })[H2] = true
  const stream = res.stream
  let closeAfter = false
  const close = (): void => {
    req.resume()
    if (!stream.closed) stream.close(constants.NGHTTP2_NO_ERROR)
  }
  const writeHead = res.writeHead
  Object.defineProperties(res, {
    destroyed: { configurable: true, get: () => stream.destroyed || stream.closed },
    shouldKeepAlive: {
      configurable: true,
      get: () => !closeAfter,
      set: (keep: boolean) => {
        if (keep || closeAfter) return
        closeAfter = true
        if (stream.writableFinished) close()
        else stream.once('finish', close)
      }
    },
    destroy: {
      configurable: true,
      value: () => {
        if (!stream.closed) stream.close(constants.NGHTTP2_INTERNAL_ERROR)
        return res
      }
    },
    writeHead: {
      configurable: true,
      value: (status: number, a?: unknown, b?: unknown) => {
        const headers = (typeof a === 'string' ? b : a) ?? undefined
        const fixed = Array.isArray(headers) ? h2Headers(headers as string[]) : headers
        return (writeHead as (s: number, h?: unknown) => Http2ServerResponse).call(res, status, fixed)
      }
    }
  })
}

/** A flat [name, value, …] list HTTP/2 can send (see adaptH2Request). */
function h2Headers (flat: readonly string[]): string[] {
  const out: string[] = []
  const seen = new Set<string>()
  for (let i = 0; i < flat.length; i += 2) {
    const name = String(flat[i]).toLowerCase()
    if (CONNECTION_SPECIFIC.has(name)) continue
    if (SINGLE_VALUE.has(name)) {
      if (seen.has(name)) continue
      seen.add(name)
    }
    out.push(name, flat[i + 1] as string)
  }
  return out
}

/** The client's address, for HTTP/2 too once the stream is gone. */
export function remoteAddressOf (req: { socket: { remoteAddress?: string } }): string | undefined {
  return (req as { [REMOTE]?: string })[REMOTE] ?? req.socket.remoteAddress
}

/** Whether a request or response is HTTP/2 (HTTP/2 has no reason phrase, RFC 9113 §8.3.2). */
export function isH2 (reqOrRes: object): boolean {
  return (reqOrRes as { [H2]?: true })[H2] === true
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')

/**
 * Reads the first bytes of a plain connection and says whether it is
 * HTTP/2 (the preface) or not; the bytes are put back for whichever server
 * takes it. A connection that sends nothing within `timeoutMs` (the
 * listener's request-head timeout) is closed, as a slowloris would be.
 */
export function sniffH2c (socket: Socket, timeoutMs: number, take: (h2: boolean) => void): void {
  let seen: Buffer = Buffer.alloc(0)
  const onData = (chunk: Buffer): void => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk])
    const n = Math.min(seen.length, PREFACE.length)
    const h2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n))
    if (h2 && n < PREFACE.length) return // a prefix of the preface: wait for more
    done(h2)
  }
  const onEnd = (): void => { done(false) }
  const onError = (): void => { socket.destroy() }
  let decided = false
  const timer = setTimeout(() => {
    decided = true
    socket.destroy()
  }, timeoutMs)
  const done = (h2: boolean): void => {
    if (decided) return
    decided = true
    clearTimeout(timer)
    socket.off('data', onData)
    socket.off('end', onEnd)
    socket.off('error', onError)
    socket.pause()
    if (seen.length > 0) socket.unshift(seen)
    take(h2)
    process.nextTick(() => socket.resume())
  }
  socket.on('data', onData)
  socket.once('end', onEnd)
  socket.on('error', onError)
  socket.once('close', () => clearTimeout(timer))
}
