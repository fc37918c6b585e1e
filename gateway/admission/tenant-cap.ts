/**
 * A fair share per tenant (route `bulkheads.perTenant`): each value of the
 * tenant header may have at most `maxConcurrent` requests of the route in
 * flight, so a tenant nobody thought to give a pool still cannot take the
 * whole route. One count per tenant with requests in flight (the map holds
 * no tenant at zero, so it is bounded by the requests in flight). Kept
 * across reloads by route name (admission/gate.ts AdmissionRegistry).
 */
import type { TenantCapConfig } from '../policy/snapshot.js'
import type { Slot } from '../edge/response-tag.js'
import { headerValue } from '../proxy/headers.js'

export class TenantCap {
  #config: TenantCapConfig
  readonly #inflight = new Map<string, number>()
  admitted = 0
  refused = 0

  constructor (config: TenantCapConfig) {
    this.#config = config
  }

  get config (): TenantCapConfig { return this.#config }

  configure (config: TenantCapConfig): void {
    this.#config = config
  }

  /** Tenants with requests in flight now. */
  get tenants (): number { return this.#inflight.size }

  /** The tenant the request names (its first tenant header field), or null: a request without one is not capped. */
  keyOf (raw: readonly string[]): string | null {
    return headerValue(raw, this.#config.header)
  }

  /** A slot for one more of `tenant`'s requests, or null at its share. */
  tryEnter (tenant: string): Slot | null {
    const n = this.#inflight.get(tenant) ?? 0
    if (n >= this.#config.maxConcurrent) {
      this.refused++
      return null
    }
    this.#inflight.set(tenant, n + 1)
    this.admitted++
    return { leave: () => { this.#leave(tenant) } }
  }

  /** The most requests one tenant has in flight now (status; off the hot path). */
  busiest (): number {
    let most = 0
    for (const n of this.#inflight.values()) if (n > most) most = n
    return most
  }

  #leave (tenant: string): void {
    const n = this.#inflight.get(tenant) ?? 0
    if (n <= 1) this.#inflight.delete(tenant)
    else this.#inflight.set(tenant, n - 1)
  }
}
