/**
 * Interim (1xx) responses from upstreams, which undici does not take: it
 * destroys the socket on a `100 Continue` ("bad response", undici 7 and 8
 * alike), although RFC 9110 §15.2 lets a server send one unasked before its
 * final response, and it hands other 1xx to the handler as if final. The
 * gateway never sends `Expect` upstream (it answers a client's
 * `Expect: 100-continue` itself), so every 1xx but 101 is noise to drop.
 *
 * Done at the socket, on the connector's socket, before undici's parser:
 * `read()` is wrapped so that, at the start of a response, complete 1xx
 * messages are cut off the front. Only the first bytes of a response are
 * looked at ("at start" is set by the first write of a request, since the
 * pools do not pipeline), so the body path costs one boolean test per read.
 * A `101` ends the filtering for good (the socket becomes a tunnel).
 */
import type { Socket } from 'node:net'
import type { buildConnector } from 'undici'
import type { UpstreamTlsConfig } from '../policy/snapshot.js'
import { upstreamConnector } from '../core/upstream-connector.js'

/** A connector (undici `connect` option, core/upstream-connector.ts) whose sockets drop interim responses. */
export function interimDroppingConnector (timeoutMs: number, tls: UpstreamTlsConfig | null = null, h2 = false): buildConnector.connector {
  return upstreamConnector(timeoutMs, tls, dropInterimResponses, h2)
}

/** Largest interim response head kept while waiting for its end (bigger ones go to undici as they are). */
const MAX_INTERIM = 16 * 1024
const NEED_MORE = -1
const FINAL = 0

export function dropInterimResponses (socket: Socket): void {
  // HTTP/2 frames, not HTTP/1.1 text: undici's h2 session handles 1xx itself.
  if ((socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === 'h2') return
  const read = socket.read
  const write = socket.write
  let atStart = false
  let idle = true
  let off = false
  let held: Buffer | null = null
  socket.write = function (this: Socket, ...args: unknown[]): boolean {
    if (idle && !off) {
      atStart = true
      idle = false
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args)
  } as typeof socket.write
  socket.read = function (this: Socket, size?: number): unknown {
    let chunk = read.call(this, size) as Buffer | null
    if (!atStart || chunk === null) return chunk
    if (held !== null) {
      chunk = Buffer.concat([held, chunk])
      held = null
    }
    for (;;) {
      const n = interimLength(chunk)
      if (n === NEED_MORE) {
        held = chunk
        return null // the next 'readable' brings the rest
      }
      if (n === FINAL) {
        atStart = false
        idle = true
        if (isStatus101(chunk)) off = true
        return chunk
      }
      chunk = chunk.subarray(n)
      if (chunk.length === 0) return null
    }
  } as typeof socket.read
}

const HTTP1 = Buffer.from('HTTP/1.')

/**
 * Length of the complete 1xx (not 101) message at the start of `b`; FINAL
 * when `b` starts with anything else; NEED_MORE when it cannot tell yet.
 */
export function interimLength (b: Buffer): number {
  const n = Math.min(b.length, HTTP1.length)
  for (let i = 0; i < n; i++) if (b[i] !== HTTP1[i]) return FINAL
  if (b.length < 12) return NEED_MORE
  // "HTTP/1.x 1yz"
  if (b[8] !== 0x20 || b[9] !== 0x31 || isStatus101(b)) return FINAL
  const end = b.indexOf('\r\n\r\n', 12, 'latin1')
  if (end === -1) return b.length > MAX_INTERIM ? FINAL : NEED_MORE
  return end + 4
}

function isStatus101 (b: Buffer): boolean {
  return b.length >= 12 && b[9] === 0x31 && b[10] === 0x30 && b[11] === 0x31
}
