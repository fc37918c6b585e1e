/**
 * Header rules of a forwarding proxy (RFC 9110 §7.6.1, fastify-reply-from's
 * utils): hop-by-hop headers and those named in Connection are not
 * forwarded; X-Forwarded-* / Forwarded are set; X-Request-Id is propagated or
 * made. Works on raw flat [name, value, …] arrays so Node never builds a
 * header object on the hot path.
 */
import { randomUUID } from 'node:crypto'

/** Never forwarded in either direction. `expect` is answered by Node itself (100-continue). */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer',
  'upgrade', 'proxy-authenticate', 'proxy-authorization', 'expect', 'http2-settings'
])
const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-forwarded-client-cert'])
/**
 * Other headers that upstreams and frameworks read as "the client's address"
 * (NGINX real_ip, Cloudflare, Akamai, Fastly, Rails, Express trust-proxy
 * helpers). From an untrusted client they are spoofs: dropped, and
 * X-Real-IP is set to the address the gateway saw (as Traefik does).
 */
const CLIENT_IP = new Set(['x-real-ip', 'true-client-ip', 'x-client-ip', 'cf-connecting-ip', 'x-cluster-client-ip',
  'fastly-client-ip', 'x-originating-ip', 'x-remote-ip', 'x-remote-addr', 'x-forwarded', 'forwarded-for'])
const SAFE_REQUEST_ID = /^[\x21-\x7e]{1,200}$/

export interface ScannedRequest {
  /** Headers to forward, without hop-by-hop, host, forwarding and request-id headers. */
  readonly out: string[]
  readonly host: string
  readonly requestId: string
  /** Incoming X-Forwarded-For / Forwarded values (only kept when the listener trusts them). */
  readonly xff: string | null
  readonly forwarded: string | null
  /** Content-Length > 0 or Transfer-Encoding present: the body must be streamed on. */
  readonly hasBody: boolean
  /** Declared Content-Length, null when chunked or absent. */
  readonly contentLength: number | null
  /** X-Request-Timeout / grpc-timeout values, when sent. */
  readonly xRequestTimeout: string | null
  readonly grpcTimeout: string | null
  /** A trusted client's own X-Real-IP was kept (so the gateway does not add one). */
  readonly keptRealIp: boolean
  /** How many Host headers the client sent (admit.ts refuses more than one). */
  readonly hostCount: number
}

/** One pass over the client's raw headers. */
export function scanRequestHeaders (raw: readonly string[], trustForwarded: boolean): ScannedRequest {
  const out: string[] = []
  let host = ''
  let requestId: string | null = null
  let xff: string | null = null
  let forwarded: string | null = null
  let connection: string | null = null
  let hasBody = false
  let contentLength: number | null = null
  let xRequestTimeout: string | null = null
  let grpcTimeout: string | null = null
  let keptRealIp = false
  let hostCount = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const value = raw[i + 1] as string
    const lower = name.toLowerCase()
    if (lower === 'host') {
      host = value
      hostCount++
    }
    else if (lower === 'content-length') {
      hasBody = value !== '0'
      contentLength = Number(value)
      out.push(name, value)
    } else if (lower === 'x-request-timeout' || lower === 'grpc-timeout') {
      if (lower === 'x-request-timeout') xRequestTimeout = value
      else grpcTimeout = value
      out.push(name, value)
    } else if (lower === 'transfer-encoding') hasBody = true
    else if (lower === 'x-request-id') requestId = value
    else if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') connection = connection === null ? value : `${connection}, ${value}`
    } else if (FORWARDING.has(lower)) {
      if (trustForwarded) {
        if (lower === 'x-forwarded-for') xff = xff === null ? value : `${xff}, ${value}`
        else if (lower === 'forwarded') forwarded = forwarded === null ? value : `${forwarded}, ${value}`
      }
    } else if (CLIENT_IP.has(lower)) {
      if (trustForwarded) {
        out.push(name, value)
        if (lower === 'x-real-ip') keptRealIp = true
      }
    } else {
      out.push(name, value)
    }
  }
  return {
    out: namesHeaders(connection) ? dropConnectionTokens(out, connection as string) : out,
    host,
    requestId: requestId !== null && SAFE_REQUEST_ID.test(requestId) ? requestId : randomUUID(),
    xff,
    forwarded,
    hasBody,
    contentLength,
    xRequestTimeout,
    grpcTimeout,
    keptRealIp,
    hostCount
  }
}

/**
 * Whether a Connection value names headers beyond the usual keep-alive /
 * close (almost every keep-alive client sends one, so the common case must
 * not allocate).
 */
function namesHeaders (connection: string | null): boolean {
  if (connection === null) return false
  const v = connection.length <= 10 ? connection.toLowerCase() : ''
  return v !== 'keep-alive' && v !== 'close'
}

/** Headers the Connection header names are hop-by-hop too (RFC 9110 §7.6.1). */
function dropConnectionTokens (headers: string[], connection: string): string[] {
  const tokens = new Set(connection.toLowerCase().split(',').map(t => t.trim()).filter(t => t !== ''))
  const kept: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if (!tokens.has((headers[i] as string).toLowerCase())) kept.push(headers[i] as string, headers[i + 1] as string)
  }
  return kept
}

/**
 * Appends X-Forwarded-*, Forwarded, X-Real-IP and X-Request-Id to
 * `scan.out` (Host is set per attempt). `host` must be a validated Host
 * (admit.ts): it is copied into Forwarded and X-Forwarded-Host.
 */
export function addForwardingHeaders (scan: ScannedRequest, clientIp: string, proto: string, host: string, clientCert: string | null = null): string[] {
  const out = scan.out
  if (clientCert !== null) out.push('x-forwarded-client-cert', clientCert)
  out.push('x-forwarded-for', scan.xff === null ? clientIp : `${scan.xff}, ${clientIp}`)
  if (!scan.keptRealIp) out.push('x-real-ip', clientIp)
  out.push('x-forwarded-proto', proto)
  if (host !== '') out.push('x-forwarded-host', host)
  const forFor = clientIp.includes(':') ? `"[${clientIp}]"` : clientIp
  const element = host === '' ? `for=${forFor};proto=${proto}` : `for=${forFor};host="${host.replace(/["\\]/g, '')}";proto=${proto}`
  out.push('forwarded', scan.forwarded === null ? element : `${scan.forwarded}, ${element}`)
  out.push('x-request-id', scan.requestId)
  return out
}

/**
 * Upstream response headers (undici raw Buffers) to a flat string array for
 * res.writeHead, minus hop-by-hop ones, plus the gateway's own. `sized` says
 * whether the response declared a Content-Length (else it is streamed).
 */
export function responseHeaders (raw: readonly Buffer[], requestId: string, upstreamName: string): { headers: string[], sized: boolean } {
  const out: string[] = []
  let connection: string | null = null
  let hasRequestId = false
  let sized = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1')
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') connection = (raw[i + 1] as Buffer).toString('latin1')
      continue
    }
    if (lower === 'x-request-id') hasRequestId = true
    else if (lower === 'content-length') sized = true
    out.push(name, (raw[i + 1] as Buffer).toString('latin1'))
  }
  const kept = namesHeaders(connection) ? dropConnectionTokens(out, connection as string) : out
  if (!hasRequestId) kept.push('x-request-id', requestId)
  kept.push('x-gateway-upstream', upstreamName)
  return { headers: kept, sized }
}

/** Every field with this name, in order (node:http keeps repeated fields apart in rawHeaders). */
export function headerValues (raw: readonly string[], lowerName: string): string[] {
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === lowerName) out.push(raw[i + 1] as string)
  }
  return out
}

/** The first value of a header in a raw [name, value, …] array (`lowerName` in lower case). */
export function headerValue (raw: readonly string[], lowerName: string): string | null {
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === lowerName) return raw[i + 1] as string
  }
  return null
}
