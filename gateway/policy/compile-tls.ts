/**
 * Upstream TLS (schema-tls.ts): the nearest block (upstream, route
 * `upstreamTls`, `defaults.upstreamTls`) for each https:// upstream, its
 * PEM files read through the injected reader and checked by building a
 * secure context (so a wrong file or a key that does not match its
 * certificate is a policy error, not a failed handshake later). The PEM
 * text is kept in a TlsMaterial, which never serializes.
 */
import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import { createSecureContext } from 'node:tls'
import { dirname, isAbsolute, resolve } from 'node:path'
import type { Static } from '@sinclair/typebox'
import type { UpstreamTlsSchema } from './schema-tls.js'
import type { PolicySource } from './source.js'
import type { PolicyIssue } from './issues.js'
import type { UpstreamTlsConfig } from './snapshot.js'
import { TlsMaterial } from './tls-material.js'

export type UpstreamTlsDoc = Static<typeof UpstreamTlsSchema>
/** Reads a file as text; throws (with a `code`) when it cannot. */
export type ReadText = (file: string) => string

type Path = Array<string | number>

export interface TlsContext {
  readonly source: PolicySource
  readonly issues: PolicyIssue[]
  readonly read: ReadText
  /** defaults.upstreamTls, with its path. */
  readonly defaults: UpstreamTlsDoc | undefined
}

/**
 * The TLS settings of one upstream: null for http://; for https://, the
 * nearest block (or the defaults: system CAs, SNI from the URL host).
 */
export function compileUpstreamTls (url: URL, own: { doc: UpstreamTlsDoc | undefined, path: Path }, route: { doc: UpstreamTlsDoc | undefined, path: Path }, ctx: TlsContext): UpstreamTlsConfig | null {
  if (url.protocol !== 'https:') {
    if (own.doc !== undefined) ctx.issues.push(ctx.source.issue(own.path, 'tls applies to https:// upstreams only; this upstream is http://', true))
    return null
  }
  const [doc, path] = own.doc !== undefined
    ? [own.doc, own.path]
    : route.doc !== undefined ? [route.doc, route.path] : [ctx.defaults, ['defaults', 'upstreamTls']]
  const host = url.hostname.replace(/^\[|\]$/g, '')
  const servername = doc?.servername ?? (isIP(host) === 0 ? host : null)
  const minVersion = doc?.minVersion ?? 'TLSv1.2'
  const verify = doc?.verify ?? true
  const file = (key: 'ca' | 'cert' | 'key'): { path: string | null, text: string | null } => {
    const name = doc?.[key]
    if (typeof name !== 'string') return { path: null, text: null }
    const full = isAbsolute(name) ? name : resolve(dirname(ctx.source.file), name)
    try {
      return { path: full, text: ctx.read(full) }
    } catch (err) {
      const code = String((err as { code?: unknown }).code ?? 'unreadable')
      ctx.issues.push(ctx.source.issue([...path, key], `cannot read the ${key} file ${name} (${code}); give the path of a readable PEM file, relative to the policy file's folder`))
      return { path: full, text: null }
    }
  }
  const ca = file('ca')
  const cert = file('cert')
  const key = file('key')
  if ((cert.path === null) !== (key.path === null)) {
    ctx.issues.push(ctx.source.issue([...path, cert.path === null ? 'cert' : 'key'], 'a client certificate needs both cert and key', true))
  } else if (ca.text !== null || cert.text !== null || key.text !== null) {
    try {
      createSecureContext({ ...(ca.text === null ? {} : { ca: ca.text }), ...(cert.text === null ? {} : { cert: cert.text }), ...(key.text === null ? {} : { key: key.text }), minVersion })
    } catch (err) {
      // OpenSSL's reason names what is wrong (no PEM, key mismatch) and nothing of the contents.
      ctx.issues.push(ctx.source.issue(path, `the TLS files cannot be used: ${String((err as Error).message).split('\n')[0] ?? ''}`, true))
    }
  }
  const id = createHash('sha256').update(JSON.stringify([servername, minVersion, verify, ca.text, cert.text, key.text])).digest('hex').slice(0, 16)
  return {
    servername,
    minVersion,
    verify,
    files: { ca: ca.path, cert: cert.path, key: key.path },
    material: new TlsMaterial(ca.text, cert.text, key.text),
    id
  }
}
