/**
 * Hot reload as traefik does it: build the new runtime aside, swap one
 * reference, release what the old one alone used. An invalid file, or one
 * that changes what is bound at start-up, never replaces the running policy.
 * Reloads are serialized; a burst collapses into the ones already queued.
 */
import { loadPolicyFile } from '../policy/load.js'
import type { ListenerConfig, PolicySnapshot } from '../policy/snapshot.js'
import type { PolicyIssue } from '../policy/issues.js'

export type { ReloadRecord, ReloadTrigger } from '../policy/reload-record.js'

export type Env = Readonly<Record<string, string | undefined>>

/** Loads `file` and decides whether it may replace `current`. */
export async function prepareReload (file: string, current: PolicySnapshot, env: Env):
Promise<{ kind: 'unchanged' } | { kind: 'ok', snapshot: PolicySnapshot } | { kind: 'rejected', code: string, issues: PolicyIssue[] }> {
  let loaded: Awaited<ReturnType<typeof loadPolicyFile>>
  try {
    loaded = await loadPolicyFile(file, env)
  } catch (err) {
    // loadPolicyFile never throws; should it, the reload is still rejected
    // (logged, an event, 422) rather than a 500 with nothing logged.
    const name = err instanceof Error ? err.name : typeof err
    return { kind: 'rejected', code: 'GW_ERR_POLICY_INVALID', issues: [{ file, path: '', line: 0, column: 0, message: `the policy could not be loaded (unexpected ${name}); this is a gateway bug, please report it` }] }
  }
  if (!loaded.ok) return { kind: 'rejected', code: loaded.code, issues: loaded.issues }
  const next = loaded.snapshot
  if (next.hash === current.hash && next.filesHash === current.filesHash) return { kind: 'unchanged' }
  const staticChanges: PolicyIssue[] = []
  if (JSON.stringify(next.listeners.map(boundAtStart)) !== JSON.stringify(current.listeners.map(boundAtStart))) {
    staticChanges.push({ file, path: 'listeners', line: 0, column: 0, message: 'listeners changed; they are bound at start-up (all but their TLS certificates, minVersion, client CA and HSTS): restore them to reload the rest, or restart the gateway' })
  }
  if (JSON.stringify(next.admin) !== JSON.stringify(current.admin)) {
    staticChanges.push({ file, path: 'admin', line: 0, column: 0, message: 'admin changed; it is bound at start-up: restore it to reload the rest, or restart the gateway' })
  }
  if (JSON.stringify(next.store) !== JSON.stringify(current.store)) {
    staticChanges.push({ file, path: 'store', line: 0, column: 0, message: 'store changed; it is bound at start-up: restore it to reload the rest, or restart the gateway' })
  }
  if (staticChanges.length > 0) return { kind: 'rejected', code: 'GW_ERR_POLICY_STATIC_CHANGED', issues: staticChanges }
  return { kind: 'ok', snapshot: next }
}

/** What of a listener only a restart can change: all but its TLS files and settings (the listener swaps those in). */
function boundAtStart (l: ListenerConfig): object {
  return { ...l, tls: l.tls === null ? null : { clientAuth: l.tls.clientAuth?.mode ?? null } }
}
