/**
 * What the upstream is told of the client's connection: the scheme
 * (X-Forwarded-Proto) and, for a client that presented a certificate the
 * listener verified (mTLS), an X-Forwarded-Client-Cert value in Envoy's
 * form: `Hash=<sha256 of the DER>;Subject="<subject>"`. Computed once per
 * connection.
 */
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'

const XFCC = Symbol('gateway.xfcc')

type Tagged = TLSSocket & { [XFCC]?: string | null }

export function forwardedProto (socket: Socket): 'http' | 'https' {
  return (socket as Partial<TLSSocket>).encrypted === true ? 'https' : 'http'
}

/** The X-Forwarded-Client-Cert value, or null (plain HTTP, no certificate, or one not verified). */
export function clientCertHeader (socket: Socket): string | null {
  const s = socket as Tagged
  if (s.encrypted !== true) return null
  if (s[XFCC] !== undefined) return s[XFCC]
  let value: string | null = null
  if (s.authorized) {
    const peer = s.getPeerCertificate()
    if (peer !== null && typeof peer.fingerprint256 === 'string') {
      const hash = peer.fingerprint256.replace(/:/g, '').toLowerCase()
      const subject = Object.entries(peer.subject ?? {}).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`).join(',')
      value = `Hash=${hash};Subject="${subject.replace(/["\\\r\n]/g, '')}"`
    }
  }
  s[XFCC] = value
  return value
}
