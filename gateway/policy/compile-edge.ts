/**
 * Compiles a listener's edge settings (path normalization, client timeouts,
 * connection and header limits) and a route's body limit, with the
 * defaults documented in schema-edge.ts.
 */
import { size, type DurationFn } from './compile-kit.js'
import type { ListenerDoc, RouteDoc } from './schema.js'
import type { ListenerConfig, ListenerTlsConfig } from './snapshot.js'

export const EDGE_DEFAULTS = Object.freeze({
  requestHeadersMs: 10_000,
  requestBodyMs: 20_000,
  bodyIdleMs: 30_000,
  keepAliveMs: 30_000,
  maxConnections: 10_000,
  maxHeaderCount: 100,
  maxHeaderBytes: 32 * 1024,
  minBodyRate: 500,
  maxConcurrentStreams: 100,
  maxBodyBytes: 10 * 1024 * 1024
})

export function compileListener (l: ListenerDoc, i: number, duration: DurationFn, tls: ListenerTlsConfig | null): ListenerConfig {
  const at = (...p: string[]): Array<string | number> => ['listeners', i, ...p]
  const t = l.timeouts
  const lim = l.limits
  return {
    name: l.name ?? `listener-${i}`,
    host: l.host ?? '0.0.0.0',
    port: l.port,
    trustForwarded: l.trustForwarded ?? false,
    paths: {
      slashes: l.paths?.slashes ?? 'merge',
      escapedSlashes: l.paths?.escapedSlashes ?? 'reject'
    },
    timeouts: {
      requestHeadersMs: duration(t?.requestHeaders, at('timeouts', 'requestHeaders'), EDGE_DEFAULTS.requestHeadersMs),
      requestBodyMs: duration(t?.requestBody, at('timeouts', 'requestBody'), EDGE_DEFAULTS.requestBodyMs),
      bodyIdleMs: duration(t?.bodyIdle, at('timeouts', 'bodyIdle'), EDGE_DEFAULTS.bodyIdleMs),
      keepAliveMs: duration(t?.keepAlive, at('timeouts', 'keepAlive'), EDGE_DEFAULTS.keepAliveMs)
    },
    limits: {
      maxConnections: lim?.maxConnections ?? EDGE_DEFAULTS.maxConnections,
      maxHeaderCount: lim?.maxHeaderCount ?? EDGE_DEFAULTS.maxHeaderCount,
      maxHeaderBytes: size(lim?.maxHeaderSize, EDGE_DEFAULTS.maxHeaderBytes),
      minBodyRate: size(lim?.minBodyRate, EDGE_DEFAULTS.minBodyRate),
      maxConcurrentStreams: lim?.maxConcurrentStreams ?? EDGE_DEFAULTS.maxConcurrentStreams
    },
    tls,
    http2: l.http2 ?? tls !== null
  }
}

export function compileRouteLimits (r: RouteDoc): { maxBodyBytes: number } {
  return { maxBodyBytes: size(r.limits?.maxBodySize, EDGE_DEFAULTS.maxBodyBytes) }
}
