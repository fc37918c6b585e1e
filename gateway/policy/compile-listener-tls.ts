/**
 * A listener's TLS block (schema-tls.ts): each certificate and key read
 * through the injected reader and checked by building a secure context (a
 * key that does not match, a file that is no PEM: a policy error, so a bad
 * swap on disk never replaces the running certificates), the names it
 * answers taken from the certificate when not given, the client CA for
 * mTLS, the HSTS value.
 */
import { createHash, X509Certificate } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { dirname, isAbsolute, resolve } from 'node:path'
import type { Static } from '@sinclair/typebox'
import type { ListenerTlsSchema } from './schema-tls.js'
import type { PolicySource } from './source.js'
import type { PolicyIssue } from './issues.js'
import type { ListenerCertificate, ListenerTlsConfig } from './snapshot.js'
import type { ReadText } from './compile-tls.js'
import { TlsMaterial } from './tls-material.js'

export type ListenerTlsDoc = Static<typeof ListenerTlsSchema>

type Path = Array<string | number>

export interface ListenerTlsContext {
  readonly source: PolicySource
  readonly issues: PolicyIssue[]
  readonly read: ReadText
}

export function compileListenerTls (doc: ListenerTlsDoc | undefined, path: Path, ctx: ListenerTlsContext): ListenerTlsConfig | null {
  if (doc === undefined) return null
  const minVersion = doc.minVersion ?? 'TLSv1.2'
  const file = (name: string, at: Path, what: string): { path: string, text: string | null } => {
    const full = isAbsolute(name) ? name : resolve(dirname(ctx.source.file), name)
    try {
      return { path: full, text: ctx.read(full) }
    } catch (err) {
      const code = String((err as { code?: unknown }).code ?? 'unreadable')
      ctx.issues.push(ctx.source.issue(at, `cannot read the ${what} file ${name} (${code}); give the path of a readable PEM file, relative to the policy file's folder`))
      return { path: full, text: null }
    }
  }
  const certificates: ListenerCertificate[] = []
  const seen = new Map<string, number>()
  doc.certificates.forEach((c, i) => {
    const at = [...path, 'certificates', i]
    const cert = file(c.cert, [...at, 'cert'], 'cert')
    const key = file(c.key, [...at, 'key'], 'key')
    if (cert.text === null || key.text === null) return
    let x509: X509Certificate
    try {
      createSecureContext({ cert: cert.text, key: key.text, minVersion })
      x509 = new X509Certificate(cert.text)
    } catch (err) {
      // OpenSSL's reason names what is wrong (no PEM, key mismatch) and nothing of the contents.
      ctx.issues.push(ctx.source.issue(at, `the certificate and key cannot be used: ${firstLine(err)}`, true))
      return
    }
    const names = (c.serverNames ?? namesOf(x509)).map(n => n.toLowerCase())
    // The first certificate answers every name no other has, so it may name none (an IP-only certificate).
    if (names.length === 0 && i > 0) {
      ctx.issues.push(ctx.source.issue(at, 'the certificate names no DNS host (no subjectAltName DNS entry, no common name), so SNI can never choose it; list the names it answers in serverNames, or make it the first (the default)', true))
    }
    for (const n of names) {
      const other = seen.get(n)
      if (other !== undefined && other !== i) ctx.issues.push(ctx.source.issue(at, `the name ${n} is answered by certificates ${other} and ${i}; give each name to one certificate (serverNames)`, true))
      seen.set(n, i)
    }
    certificates.push({
      names,
      files: { cert: cert.path, key: key.path },
      subject: x509.subject.replace(/\n/g, ', '),
      notAfter: new Date(x509.validTo).toISOString(),
      material: new TlsMaterial(null, cert.text, key.text)
    })
  })
  let clientAuth: ListenerTlsConfig['clientAuth'] = null
  if (doc.clientAuth !== undefined) {
    const at = [...path, 'clientAuth', 'ca']
    const ca = file(doc.clientAuth.ca, at, 'ca')
    if (ca.text !== null) {
      try {
        createSecureContext({ ca: ca.text })
        if (!/-----BEGIN CERTIFICATE-----/.test(ca.text)) throw new Error('no PEM certificate in the file')
      } catch (err) {
        ctx.issues.push(ctx.source.issue(at, `the client CA file cannot be used: ${firstLine(err)}`))
      }
    }
    clientAuth = { mode: doc.clientAuth.mode ?? 'require', file: ca.path, material: new TlsMaterial(ca.text, null, null) }
  }
  const h = doc.hsts
  const hsts = h === undefined
    ? null
    : `max-age=${h.maxAgeSeconds ?? 31_536_000}${h.includeSubDomains === true ? '; includeSubDomains' : ''}${h.preload === true ? '; preload' : ''}`
  const id = createHash('sha256').update(JSON.stringify([
    minVersion, hsts, clientAuth?.mode ?? null, clientAuth?.material.options().ca ?? null,
    certificates.map(c => [c.names, c.material.options().cert, c.material.options().key])
  ])).digest('hex').slice(0, 16)
  return { certificates, minVersion, clientAuth, hsts, id }
}

/** DNS names of a certificate: its subjectAltName DNS entries, or its common name when it has no subjectAltName. */
function namesOf (x: X509Certificate): string[] {
  const san = x.subjectAltName
  // With a subjectAltName the common name is not a host name (RFC 6125): clients ignore it too.
  if (san !== undefined) return san.split(',').map(s => s.trim()).filter(s => s.startsWith('DNS:')).map(s => s.slice(4))
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1]
  return cn !== undefined && /^(\*\.)?[A-Za-z0-9.-]+$/.test(cn) ? [cn] : []
}

function firstLine (err: unknown): string {
  return String((err as Error).message).split('\n')[0] ?? ''
}
