/** Errors an idempotency store may reject with. */
import { ERRORS, type ErrorSpec } from '../core/errors.js'

/**
 * The store could not answer (not connected, command timed out, the server
 * refused the command). A keyed request must then not be forwarded: without a
 * claim the gateway cannot promise to run it at most once.
 *
 * `detail` is safe to show and log: it never holds an address, a URL or a
 * password (the driver's own error is deliberately not kept as `cause`).
 */
export class StoreUnavailableError extends Error {
  readonly code: string = ERRORS.IDEMPOTENCY_STORE_UNAVAILABLE.code
  readonly spec: ErrorSpec = ERRORS.IDEMPOTENCY_STORE_UNAVAILABLE
  readonly detail: string
  /**
   * The store answered, but what it holds for the key cannot be read (a
   * record written by another version or by hand). Not an outage: a
   * `storeUnavailable: local` fallback must not claim such a key anew, since
   * the request may well have run already.
   */
  readonly unreadable: boolean

  constructor (detail: string, unreadable = false) {
    super(`idempotency store unavailable: ${detail}`)
    this.name = 'StoreUnavailableError'
    this.detail = detail
    this.unreadable = unreadable
  }
}
