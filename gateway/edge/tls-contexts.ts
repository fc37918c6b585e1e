/**
 * The certificates of a TLS listener, chosen by SNI: an exact name first,
 * then a one-label wildcard, else the first certificate. Built from the
 * policy (compile-listener-tls.ts) and replaced whole on a reload with new
 * files: the handshakes that follow get the new contexts, connections
 * already open keep the one they were made with (nothing is dropped).
 */
import { createSecureContext, type SecureContext, type SecureContextOptions, type TlsOptions } from 'node:tls'
import type { ListenerTlsConfig } from '../policy/snapshot.js'

export class TlsContexts {
  #config: ListenerTlsConfig
  #byName = new Map<string, SecureContext>()
  #default: SecureContext

  constructor (config: ListenerTlsConfig) {
    this.#config = config
    this.#default = this.#build(config)
  }

  get config (): ListenerTlsConfig { return this.#config }

  /** The options for tls/https/http2 createServer: default certificate, SNI, client certificates. */
  serverOptions (): TlsOptions {
    const c = this.#config
    return {
      ...this.#options(c, 0),
      SNICallback: this.sni,
      requestCert: c.clientAuth !== null,
      // optional mode: a client may send none; one it sends is checked by rejectBadPeer.
      rejectUnauthorized: c.clientAuth?.mode === 'require'
    }
  }

  /** Installs a reloaded block; returns the default context's options for server.setSecureContext. */
  update (config: ListenerTlsConfig): SecureContextOptions {
    this.#config = config
    this.#default = this.#build(config)
    return this.#options(config, 0)
  }

  readonly sni = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, this.lookup(servername))
  }

  /** The context for a requested name (the default when none matches). */
  lookup (servername: string): SecureContext {
    const name = servername.toLowerCase()
    const exact = this.#byName.get(name)
    if (exact !== undefined) return exact
    const dot = name.indexOf('.')
    return (dot > 0 ? this.#byName.get(`*${name.slice(dot)}`) : undefined) ?? this.#default
  }

  #build (config: ListenerTlsConfig): SecureContext {
    const byName = new Map<string, SecureContext>()
    let first: SecureContext | null = null
    config.certificates.forEach((cert, i) => {
      const ctx = createSecureContext(this.#options(config, i))
      first ??= ctx
      for (const n of cert.names) if (!byName.has(n)) byName.set(n, ctx)
    })
    this.#byName = byName
    return first ?? createSecureContext({ minVersion: config.minVersion })
  }

  #options (config: ListenerTlsConfig, i: number): SecureContextOptions {
    const cert = config.certificates[i]
    // The client CA goes in every context: the one SNI picks verifies the client.
    const ca = config.clientAuth?.material.options().ca
    return { ...(cert?.material.options() ?? {}), ...(ca === undefined ? {} : { ca }), minVersion: config.minVersion }
  }
}
