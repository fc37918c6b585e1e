/**
 * The edge checks every request passes before routing, plain and Upgrade
 * alike (RFC 9112 §2.3, §3.2): an HTTP/1.x request line, exactly one valid
 * Host (an absolute-form target's authority replaces it), a header count
 * within the listener limit (node:http would silently keep only the first
 * ones), and a normalized path (path.ts).
 */
import type { IncomingMessage } from 'node:http'
import { ERRORS, type ErrorSpec } from '../core/errors.js'
import type { ListenerConfig } from '../policy/snapshot.js'
import { normalizeTarget } from './path.js'
import { isH2 } from './h2.js'

export interface Admitted {
  /** Normalized path plus query: what routes match on and what is forwarded. */
  readonly target: string
  /** The Host to route on and forward ('' when an HTTP/1.0 client sent none). */
  readonly host: string
}

export interface Rejected {
  readonly reject: ErrorSpec
  readonly detail: string
}

/**
 * reg-name (letters, digits, `-._~`) or an IPv6/IPvFuture literal, then an
 * optional port. Stricter than RFC 3986's reg-name on purpose: sub-delims
 * and %-escapes have no place in a real host name and make the value unsafe
 * to copy into Forwarded / X-Forwarded-Host.
 */
const HOST_RE = /^(?:\[[0-9A-Za-z:.]+\]|[A-Za-z0-9._~-]+)(?::[0-9]{1,5})?$/
const ABSOLUTE_RE = /^https?:\/\/([^/?#]*)([^#]*)$/i
/** Almost every request repeats the previous Host: checked once. */
let lastGoodHost = ''

/**
 * @param scan the Host header(s) as the caller's one pass over the raw
 *   headers found them (proxy/headers.ts scanRequestHeaders).
 */
export function admitRequest (req: IncomingMessage, cfg: ListenerConfig, scan: { readonly host: string, readonly hostCount: number }): Admitted | Rejected {
  if (req.httpVersionMajor !== 1 && !isH2(req)) {
    return { reject: ERRORS.HTTP_VERSION_NOT_SUPPORTED, detail: `HTTP/${req.httpVersionMajor}.${req.httpVersionMinor} is not served here; send HTTP/1.1` }
  }
  // Over HTTP/1.1 CONNECT never gets here (node:http hands it over as a socket, proxy/upgrade.ts).
  if (req.method === 'CONNECT') return { reject: ERRORS.METHOD_NOT_SUPPORTED, detail: 'CONNECT tunnels are not supported: the gateway is a reverse proxy' }
  const raw = req.rawHeaders
  // node:http keeps at most maxHeadersCount (set to the limit + 1 by the
  // listener): reaching it means some were dropped, so nothing is forwarded.
  if (raw.length > cfg.limits.maxHeaderCount * 2) {
    return { reject: ERRORS.HEADERS_TOO_LARGE, detail: `the request has more than ${cfg.limits.maxHeaderCount} header fields` }
  }
  if (scan.hostCount > 1) return { reject: ERRORS.HOST_INVALID, detail: 'the request has more than one Host header' }
  let host: string | null = scan.hostCount === 0 ? null : scan.host
  if (host !== null && host !== '' && host !== lastGoodHost) {
    if (!HOST_RE.test(host)) return { reject: ERRORS.HOST_INVALID, detail: 'the Host header is not a valid host[:port]' }
    lastGoodHost = host
  }
  let target = req.url ?? ''
  if (target.charCodeAt(0) !== 47 /* / */) {
    const m = ABSOLUTE_RE.exec(target)
    if (m === null) return { reject: ERRORS.BAD_REQUEST, detail: 'the request target must be a path like /orders/1' }
    const authority = m[1] as string
    if (authority === '' || !HOST_RE.test(authority)) {
      return { reject: ERRORS.HOST_INVALID, detail: 'the authority of the absolute-form target is not a valid host[:port]' }
    }
    // RFC 9112 §3.2.2: the target's authority replaces the Host header.
    host = authority
    target = (m[2] as string) === '' ? '/' : m[2] as string
    if (target.charCodeAt(0) !== 47) target = '/' + target
  }
  if (host === null) {
    if (req.httpVersionMinor >= 1 || req.httpVersionMajor === 2) return { reject: ERRORS.HOST_INVALID, detail: 'an HTTP/1.1 request needs a Host header' }
    host = ''
  }
  const normalized = normalizeTarget(target, cfg.paths)
  if (typeof normalized !== 'string') return { reject: ERRORS.PATH_INVALID, detail: normalized.error }
  return { target: normalized, host }
}
