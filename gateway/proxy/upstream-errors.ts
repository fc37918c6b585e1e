/**
 * The one place that maps transport failures to gateway errors
 * (fastify-reply-from's idea), keeping the original as `cause`:
 * connect failures, TLS failures and resets → 502, timeouts → 504, bad
 * HTTP → 502.
 */
import { ERRORS, type ErrorSpec } from '../core/errors.js'
import { OUTCOME_INDEX } from '../health/outcome.js'

export interface Classified {
  readonly spec: ErrorSpec
  /** Index into OUTCOMES. */
  readonly outcome: number
  /** Safe to show a client: no addresses, no stack. */
  readonly detail: string
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'UND_ERR_CONNECT_TIMEOUT', 'ECONNABORTED', 'ETIMEDOUT'])
// ETIMEDOUT is the OS giving up on a TCP connect: a connect failure, not a slow answer.
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
// Certificate checks (OpenSSL's names, as node:tls reports them).
const UNTRUSTED_CODES = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE', 'CERT_REJECTED', 'INVALID_CA', 'CERT_CHAIN_TOO_LONG', 'INVALID_PURPOSE', 'CERT_REVOKED'])
const EXPIRED_CODES = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID'])

/** A TLS failure's reason for the client (no names or addresses), or null if `code` is not one. */
function tlsReason (code: string): string | null {
  if (UNTRUSTED_CODES.has(code)) return 'untrusted: the upstream\'s certificate is not signed by a trusted CA'
  if (EXPIRED_CODES.has(code)) return code === 'CERT_HAS_EXPIRED' ? 'expired: the upstream\'s certificate has expired' : 'not yet valid: the upstream\'s certificate is not valid yet'
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'hostname mismatch: the upstream\'s certificate does not name its host'
  if (code.startsWith('ERR_SSL_') || code === 'EPROTO' || code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return /CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|BAD_CERTIFICATE|UNKNOWN_CA/.test(code) ? 'handshake failure: the upstream refused the handshake (it may want a client certificate)' : 'handshake failure: no TLS session could be agreed with the upstream'
  return null
}

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED'])

export function classifyUpstreamError (err: unknown): Classified {
  const code = String((err as { code?: unknown } | null)?.code ?? '')
  if (CONNECT_CODES.has(code)) {
    const detail = code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT' ? 'connecting to the upstream timed out' : code.startsWith('E') && code !== 'ECONNREFUSED' ? 'the upstream host could not be reached' : 'the upstream refused the connection'
    return { spec: ERRORS.UPSTREAM_CONNECT, outcome: OUTCOME_INDEX.connect, detail }
  }
  const tls = tlsReason(code)
  if (tls !== null) {
    // Refused in the handshake: the upstream's application never saw the
    // request (an mTLS refusal may arrive after the first write, but still
    // before any request is read), so it counts as never sent.
    return { spec: ERRORS.UPSTREAM_TLS, outcome: OUTCOME_INDEX.connect, detail: `TLS with the upstream failed, ${tls}` }
  }
  if (TIMEOUT_CODES.has(code)) {
    const detail = code === 'UND_ERR_BODY_TIMEOUT' ? 'the upstream stopped sending its response body' : 'the upstream sent no response headers within the route timeout'
    return { spec: ERRORS.UPSTREAM_TIMEOUT, outcome: OUTCOME_INDEX.timeout, detail }
  }
  if (RESET_CODES.has(code)) {
    return { spec: ERRORS.UPSTREAM_RESET, outcome: OUTCOME_INDEX.reset, detail: 'the upstream closed the connection before the response was complete' }
  }
  if (code.startsWith('HPE_') || (err as Error | null)?.name === 'HTTPParserError' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_INFO' || code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
    return { spec: ERRORS.UPSTREAM_PROTOCOL, outcome: OUTCOME_INDEX.protocol, detail: 'the upstream response was not valid HTTP' }
  }
  if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
    return { spec: ERRORS.BAD_REQUEST, outcome: OUTCOME_INDEX.aborted, detail: 'the request body did not match its Content-Length' }
  }
  return { spec: ERRORS.UPSTREAM_RESET, outcome: OUTCOME_INDEX.reset, detail: 'the exchange with the upstream failed' }
}
