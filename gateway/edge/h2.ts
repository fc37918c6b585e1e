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
import type { Http2ServerRequest } from 'node:http2'

const H2 = Symbol('gateway.h2')

/** Prepares an HTTP/2 request (and marks its response) for the HTTP/1.1 handler (see above). */
export function adaptH2Request (req: Http2ServerRequest, res: object): void {
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
  ;(req as unknown as { [H2]: true })[H2] = true
  ;(res as { [H2]?: true })[H2] = true
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
