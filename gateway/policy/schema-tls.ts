/**
 * TLS to an https:// upstream (a payment channel's API, often asking for a
 * client certificate): which CAs to trust, the client certificate, the
 * name to ask for (SNI) and check, the lowest protocol version. Set per
 * upstream, or for every https upstream of a route (`upstreamTls`) or of
 * the policy (`defaults.upstreamTls`); the nearest one wins, whole.
 */
import { Type } from '@sinclair/typebox'
import { strict } from './schema-kit.js'

const PemFile = (description: string) => Type.String({
  minLength: 1,
  maxLength: 4096,
  description: `${description} A path, relative to the policy file's folder unless absolute; read on every load and reload.`,
  'x-hint': 'write the path of a PEM file'
})

const props = {
  ca: Type.Optional(PemFile('PEM file of the CA certificates that may sign the upstream\'s certificate, instead of the system store (Node\'s bundled roots and NODE_EXTRA_CA_CERTS). @default the system store')),
  cert: Type.Optional(PemFile('PEM file of the client certificate (chain) the gateway presents (mTLS). Needs key.')),
  key: Type.Optional(PemFile('PEM file of the client certificate\'s private key. Never shown in /status, logs or errors. Needs cert.')),
  servername: Type.Optional(Type.String({
    pattern: '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$',
    maxLength: 253,
    description: 'The name sent as SNI and checked against the certificate. @default the URL\'s host (none for an IP address, which is then checked against the certificate\'s IP entries)',
    'x-hint': 'write a DNS name such as api.acquirer.example'
  })),
  minVersion: Type.Optional(Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], { description: 'Lowest TLS version accepted. @default TLSv1.2' })),
  verify: Type.Optional(Type.Boolean({ description: 'false turns certificate verification off (any certificate is accepted, so anyone on the path can read and change the traffic). For test setups only: /status shows verify: false and every load logs a warning. @default true' }))
}

/** The same block where it applies to several upstreams (a route's, the defaults'). */
export const upstreamTlsBlock = (description: string) => strict(props, { description })

export const UpstreamTlsSchema = strict(props, { description: 'TLS to https:// upstreams: trusted CAs, a client certificate (mTLS), SNI, minimum version. Verification is always on unless verify: false. Only for https:// upstreams. See docs/upstream-tls.md.' })

const ServerName = Type.String({
  pattern: '^(\\*\\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$',
  maxLength: 253,
  'x-hint': 'write a DNS name such as pay.example.com, or a wildcard such as *.example.com'
})

const ListenerCertificateSchema = strict({
  cert: PemFile('PEM file of the certificate (leaf first, then its intermediates).'),
  key: PemFile('PEM file of the certificate\'s private key. Never shown in /status, logs or errors.'),
  serverNames: Type.Optional(Type.Array(ServerName, {
    minItems: 1,
    maxItems: 100,
    description: 'The SNI names this certificate answers (a leading *. matches one label). @default the DNS names of the certificate (subjectAltName, else its common name)'
  }))
}, { description: 'One certificate and its key.' })

export const ListenerTlsSchema = strict({
  certificates: Type.Array(ListenerCertificateSchema, {
    minItems: 1,
    maxItems: 100,
    description: 'The certificates, chosen by the name the client asks for (SNI): an exact name first, then a wildcard. The first one answers clients that send no name or one no certificate has.'
  }),
  minVersion: Type.Optional(Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], { description: 'Lowest TLS version a client may use. @default TLSv1.2' })),
  clientAuth: Type.Optional(strict({
    ca: PemFile('PEM file of the CA certificates that may sign client certificates.'),
    mode: Type.Optional(Type.Union([Type.Literal('require'), Type.Literal('optional')], {
      description: 'require: a client without a valid certificate is refused in the handshake. optional: a client may send none, but a certificate it sends must be valid. Changing it needs a restart. @default require'
    }))
  }, { description: 'Client certificates (mTLS to the gateway). The verified certificate is passed upstream in X-Forwarded-Client-Cert (its SHA-256 hash and subject); a client\'s own X-Forwarded-Client-Cert is always removed.' })),
  hsts: Type.Optional(strict({
    maxAgeSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 63072000, description: 'How long, in seconds, browsers must use HTTPS only (max-age; 0 tells them to forget it). @default 31536000 (a year)' })),
    includeSubDomains: Type.Optional(Type.Boolean({ description: '@default false' })),
    preload: Type.Optional(Type.Boolean({ description: '@default false' }))
  }, { description: 'Adds Strict-Transport-Security to every response of the listener (an upstream\'s own header wins). Omit for none.' }))
}, { description: 'Terminate TLS on this listener. Certificates and keys are files, read at start and on every reload (a changed file is watched like the policy): new connections get the new certificate, open ones keep theirs. Turning tls on or off, or changing clientAuth.mode, needs a restart. See docs/listener-tls.md.' })
