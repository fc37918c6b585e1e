/**
 * How the gateway opens connections to an upstream (undici's `connect`
 * option), for proxied requests (proxy/pools.ts) and probes alike. For an
 * https:// upstream it carries the upstream's TLS settings (CAs, client
 * certificate, minimum version, verification) and fixes the SNI name:
 * undici would otherwise take it from each request's Host header, which
 * under preserveHost is the client's.
 */
import type { Socket } from 'node:net'
import { buildConnector } from 'undici'
import type { UpstreamTlsConfig } from '../policy/snapshot.js'

export function upstreamConnector (timeoutMs: number, tls: UpstreamTlsConfig | null, onSocket: ((socket: Socket) => void) | null = null, h2 = false): buildConnector.connector {
  const base = buildConnector({
    timeout: timeoutMs,
    // ALPN offers h2 (then http/1.1) only where the upstream says http2: true.
    ...(h2 ? { allowH2: true } : {}),
    ...(tls === null ? {} : { ...tls.material.options(), minVersion: tls.minVersion, rejectUnauthorized: tls.verify })
  })
  // '' = no SNI (an IP address): undici then falls back to the URL host, which gives none for an IP either.
  const servername = tls === null ? null : tls.servername ?? ''
  return (options, callback) => base(servername === null ? options : { ...options, servername }, (...args) => {
    if (args[0] === null) {
      if (tls !== null) keepTlsAlert(args[1])
      if (onSocket !== null) onSocket(args[1])
    }
    callback(...args)
  })
}

/**
 * A TLS 1.3 upstream that refuses the gateway (no or a wrong client
 * certificate) sends its alert after the client's side of the handshake is
 * done, so it arrives as a socket error — and undici, closing the socket,
 * replaces it with "other side closed". Later errors of a socket that has
 * had a TLS alert are that alert, so the request fails with its reason
 * (GW_ERR_UPSTREAM_TLS) and not as a reset.
 */
function keepTlsAlert (socket: Socket): void {
  let alert: unknown = null
  const emit = socket.emit
  socket.emit = function (this: Socket, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error') {
      if (alert === null && /^ERR_SSL_/.test(String((args[0] as { code?: unknown } | null)?.code ?? ''))) alert = args[0]
      else if (alert !== null) args[0] = alert
    }
    return (emit as (...a: unknown[]) => boolean).call(this, event, ...args)
  } as typeof socket.emit
}
