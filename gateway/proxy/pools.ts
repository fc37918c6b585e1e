/**
 * One undici keep-alive Pool per upstream origin, connect timeout and TLS
 * settings (upstreams with another CA or client certificate need their own
 * connections), shared
 * by every route that uses it and kept across reloads. Pools no longer
 * referenced after a reload are closed gracefully (queued requests finish).
 */
import { Pool } from 'undici'
import { interimDroppingConnector } from './interim.js'
import type { UpstreamTlsConfig } from '../policy/snapshot.js'

export class PoolRegistry {
  readonly #pools = new Map<string, Pool>()

  get (origin: string, connectTimeoutMs: number, tls: UpstreamTlsConfig | null, h2 = false): Pool {
    const key = poolKey(origin, connectTimeoutMs, tls, h2)
    let pool = this.#pools.get(key)
    if (pool === undefined) {
      pool = new Pool(origin, {
        // Connect timeout as before; the sockets drop unsolicited 1xx (see interim.ts).
        connect: interimDroppingConnector(connectTimeoutMs, tls, h2),
        // h2 when the upstream picks it by ALPN (http2: true); each connection then carries many streams.
        ...(h2 ? { allowH2: true } : {}),
        // Keep-alive for a while but below the common 5 s server default, so
        // the upstream never closes a socket we are about to reuse.
        keepAliveTimeout: 4000,
        keepAliveMaxTimeout: 60_000,
        pipelining: 1
      })
      this.#pools.set(key, pool)
    }
    return pool
  }

  /** Close pools whose key is not in `keep` (poolKey). */
  retain (keep: ReadonlySet<string>): void {
    for (const [key, pool] of this.#pools) {
      if (!keep.has(key)) {
        this.#pools.delete(key)
        pool.close().catch(() => {})
      }
    }
  }


  /** Close without waiting for in-flight requests (shutdown past the drain bound). */
  async destroy (): Promise<void> {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.all(pools.map(p => p.destroy().catch(() => {})))
  }
}

export const poolKey = (origin: string, connectTimeoutMs: number, tls: UpstreamTlsConfig | null, h2 = false): string => `${origin}|${connectTimeoutMs}|${tls?.id ?? ''}${h2 ? '|h2' : ''}`
