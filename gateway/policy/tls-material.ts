/**
 * PEM text of an upstream's TLS files (compile-tls.ts), held where a
 * snapshot dump cannot reach it: private fields, and JSON / inspect output
 * that shows nothing of it.
 */
export class TlsMaterial {
  readonly #ca: string | null
  readonly #cert: string | null
  readonly #key: string | null
  constructor (ca: string | null, cert: string | null, key: string | null) {
    this.#ca = ca
    this.#cert = cert
    this.#key = key
  }

  /** The options for tls.connect (undici's connector). */
  options (): { ca?: string, cert?: string, key?: string } {
    return {
      ...(this.#ca === null ? {} : { ca: this.#ca }),
      ...(this.#cert === null ? {} : { cert: this.#cert }),
      ...(this.#key === null ? {} : { key: this.#key })
    }
  }

  toJSON (): string { return '[tls material]' }
  [Symbol.for('nodejs.util.inspect.custom')] (): string { return '[tls material]' }
}
