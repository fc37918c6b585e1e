/**
 * Things a valid policy may well mean but should say out loud, printed by
 * `gateway check` (and logged at load where noted): a route whose
 * upstreams get different Host headers without saying so (same-service
 * http:// instances get the client's, a foreign https:// channel its own),
 * and certificate checks turned off.
 */
import type { PolicySnapshot } from './snapshot.js'

export interface PolicyWarning {
  readonly code: 'GW_WARN_HOST_MIXED' | 'GW_WARN_TLS_UNVERIFIED'
  readonly message: string
}

export function policyWarnings (s: PolicySnapshot): PolicyWarning[] {
  const out: PolicyWarning[] = []
  for (const r of s.routes) {
    if (r.tenant !== null) continue // a bulkhead pool: its route says it
    const client = r.upstreams.filter(u => u.clientHost)
    const own = r.upstreams.filter(u => !u.clientHost)
    if (client.length > 0 && own.length > 0 && r.upstreams.some(u => !u.hostExplicit)) {
      out.push({ code: 'GW_WARN_HOST_MIXED', message: `route "${r.name}" mixes upstreams that get the client's Host (${client.map(u => u.name).join(', ')}) with upstreams that get their own (${own.map(u => u.name).join(', ')}): right when the second are foreign channels (https:// upstreams get their own host by default). Set host: client or host: upstream on each upstream to say so.` })
    }
    for (const u of r.upstreams) {
      if (u.tls !== null && !u.tls.verify) out.push({ code: 'GW_WARN_TLS_UNVERIFIED', message: `route "${r.name}", upstream "${u.name}": tls.verify is false, so its certificate is not checked and anyone on the path can read and change this traffic.` })
    }
  }
  return out
}
