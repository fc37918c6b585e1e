/**
 * Compiles the per-route websocket block with its defaults, and checks what
 * the schema cannot: an idle timeout a Node.js timer can hold.
 */
import type { DurationFn } from './compile-kit.js'
import type { RouteDoc } from './schema.js'
import type { PolicySource } from './source.js'
import type { PolicyIssue } from './issues.js'
import type { RouteConfig } from './snapshot.js'

/** HAProxy's usual `timeout tunnel`. */
export const DEFAULT_TUNNEL_IDLE_MS = 3_600_000
/** Longest delay a Node.js timer takes (about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647

export function compileUpgrade (r: RouteDoc, index: number, source: PolicySource, issues: PolicyIssue[], duration: DurationFn): { websocket: RouteConfig['websocket'] } {
  const path = ['routes', index, 'websocket', 'idleTimeout']
  const idleTimeoutMs = duration(r.websocket?.idleTimeout, path, DEFAULT_TUNNEL_IDLE_MS)
  if (idleTimeoutMs > MAX_TIMER_MS) issues.push(source.issue(path, `${String(r.websocket?.idleTimeout)} is too long: a Node.js timer holds at most 24 days`))
  return { websocket: { enabled: r.websocket?.enabled ?? true, idleTimeoutMs } }
}
