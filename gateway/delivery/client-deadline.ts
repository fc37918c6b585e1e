/**
 * A client's own deadline: `X-Request-Timeout: 500ms` (or `2s`, or plain
 * milliseconds) or gRPC's `grpc-timeout: 500m` (H, M, S, m, u, n). It can
 * only shorten the route's total timeout, never lengthen it.
 */
import { DURATION_PATTERN, parseDuration } from '../core/units.js'

const DURATION_RE = new RegExp(DURATION_PATTERN)
const GRPC_RE = /^([0-9]{1,8})([HMSmun])$/
const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }

/** Milliseconds, or null when absent or malformed (a bad header is ignored, not an error). */
export function parseClientDeadline (xRequestTimeout: string | null, grpcTimeout: string | null): number | null {
  let best: number | null = null
  if (xRequestTimeout !== null) {
    const v = xRequestTimeout.trim()
    const ms = /^[0-9]{1,9}$/.test(v) ? Number(v) : DURATION_RE.test(v) ? parseDuration(v) : null
    if (ms !== null && ms > 0) best = ms
  }
  if (grpcTimeout !== null) {
    const m = GRPC_RE.exec(grpcTimeout.trim())
    if (m !== null) {
      const ms = Number(m[1]) * (GRPC_UNIT_MS[m[2] as string] as number)
      if (ms > 0) best = best === null ? ms : Math.min(best, ms)
    }
  }
  return best
}

/** The request's deadline in ms from now: the shorter of route total (0 = none) and client deadline. */
export function effectiveTotalMs (routeTotalMs: number, client: number | null): number {
  if (client === null) return routeTotalMs > 0 ? routeTotalMs : Infinity
  return routeTotalMs > 0 ? Math.min(routeTotalMs, client) : client
}
