/**
 * The operator's commands against a running gateway (found through its
 * policy file, cli/admin-client.ts):
 *   gateway status                    routes, shares, upstream states, overrides
 *   gateway drain ROUTE UPSTREAM      no new requests to UPSTREAM
 *   gateway pin ROUTE SHARE           hold the backup share (50% or 0.5)
 *   gateway breaker ROUTE UPSTREAM open|closed
 *   gateway pause ROUTE               freeze the shift controller
 *   gateway overrides [clear ID]      list the overrides, or end one
 * Every override needs --reason and --ttl (at most 24h): it is an operator
 * action in the event log and the incident timeline, and it ends by itself.
 */
import { adminClient, refused, takePolicy, unreachable, type AdminClient, type Out } from './admin-client.js'

export const OPS_USAGE = `usage (every command takes --policy FILE, the running gateway's policy):
  gateway status [--json]
  gateway drain ROUTE UPSTREAM --reason TEXT --ttl DURATION
  gateway pin ROUTE SHARE --reason TEXT --ttl DURATION      (SHARE: 50% or 0.5)
  gateway breaker ROUTE UPSTREAM open|closed --reason TEXT --ttl DURATION
  gateway pause ROUTE --reason TEXT --ttl DURATION
  gateway overrides [clear ID]

An override holds until its ttl (at most 24h) or until cleared; a new one on
the same target replaces the old. Each is recorded as an operator action in
the event log and in the incident timeline.`

export async function ops (command: string, args: readonly string[], out: Out, err: Out): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    out.write(OPS_USAGE + '\n')
    return 0
  }
  const { file, rest } = takePolicy(args)
  if (file === null) {
    err.write(`gateway ${command}: name the running gateway's policy with --policy FILE\n${OPS_USAGE}\n`)
    return 2
  }
  const parsed = parseArgs(command, rest)
  if (typeof parsed === 'string') {
    err.write(`gateway ${command}: ${parsed}\n${OPS_USAGE}\n`)
    return 2
  }
  const client = await adminClient(file, command)
  if (typeof client === 'string') {
    err.write(client + '\n')
    return 1
  }
  try {
    return await perform(command, parsed, client, out, err)
  } catch (e) {
    err.write(unreachable(command, client.base, file, e) + '\n')
    return 1
  }
}

interface Parsed { readonly words: string[], readonly reason: string | null, readonly ttl: string | null, readonly json: boolean }

function parseArgs (command: string, args: readonly string[]): Parsed | string {
  const words: string[] = []
  let reason: string | null = null
  let ttl: string | null = null
  let json = false
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    if (a === '--reason') reason = args[++i] ?? ''
    else if (a.startsWith('--reason=')) reason = a.slice('--reason='.length)
    else if (a === '--ttl') ttl = args[++i] ?? ''
    else if (a.startsWith('--ttl=')) ttl = a.slice('--ttl='.length)
    else if (a === '--json' && command === 'status') json = true
    else if (a.startsWith('--')) return `unknown option ${a}`
    else words.push(a)
  }
  const need: Record<string, number> = { status: 0, drain: 2, pin: 2, breaker: 3, pause: 1 }
  const n = need[command]
  if (n !== undefined && words.length !== n) return `expected ${n} argument(s), got ${words.length}`
  if (command === 'overrides' && !(words.length === 0 || (words.length === 2 && words[0] === 'clear'))) return 'expected nothing, or clear ID'
  if (n !== undefined && n > 0 && (reason === null || reason.trim() === '')) return 'an override needs --reason TEXT (it goes into the incident timeline)'
  if (n !== undefined && n > 0 && (ttl === null || ttl === '')) return 'an override needs --ttl DURATION (e.g. 10m; at most 24h)'
  return { words, reason, ttl, json }
}

async function perform (command: string, p: Parsed, client: AdminClient, out: Out, err: Out): Promise<number> {
  const w = p.words
  if (command === 'status') {
    const r = await client.call('GET', '/status')
    if (r.status !== 200) return fail(err, refused(command, r.status, r.body))
    out.write(p.json ? `${JSON.stringify(r.body, null, 2)}\n` : renderStatus(r.body))
    return 0
  }
  if (command === 'overrides') {
    if (w[0] === 'clear') {
      const r = await client.call('DELETE', `/overrides/${encodeURIComponent(w[1] as string)}`)
      if (r.status === 404) return fail(err, `gateway overrides: no override ${w[1] as string} is held (gateway overrides lists them)`)
      if (r.status !== 200) return fail(err, refused(command, r.status, r.body))
      out.write(`cleared ${describe(r.body.cleared)}\n`)
      return 0
    }
    const r = await client.call('GET', '/overrides')
    if (r.status !== 200) return fail(err, refused(command, r.status, r.body))
    const list = r.body.overrides as any[]
    if (list.length === 0) out.write('no overrides\n')
    for (const o of list) out.write(`${describe(o)}\n`)
    return 0
  }
  const body: Record<string, unknown> = { kind: command, route: w[0], reason: p.reason, ttl: p.ttl }
  if (command === 'drain') body.upstream = w[1]
  if (command === 'breaker') Object.assign(body, { upstream: w[1], state: w[2] })
  if (command === 'pin') {
    const s = w[1] as string
    body.share = s.endsWith('%') ? s : Number(s)
  }
  const r = await client.call('POST', '/overrides', body)
  if (r.status !== 201) return fail(err, refused(command, r.status, r.body))
  out.write(`set ${describe(r.body.override)}\n`)
  return 0
}

function fail (err: Out, line: string): number {
  err.write(line + '\n')
  return 1
}

const pct = (v: unknown): string => typeof v === 'number' ? `${Math.round(v * 1000) / 10}%` : '—'

function describe (o: any): string {
  const target = `${String(o.route)}${o.upstream === null || o.upstream === undefined ? '' : `/${String(o.upstream)}`}`
  const what = o.kind === 'pin' ? `backup share ${pct(o.share)}` : o.kind === 'breaker' ? `breaker forced ${String(o.state)}` : o.kind === 'drain' ? 'drained' : 'controller paused'
  return `${String(o.id)}  ${String(o.kind).padEnd(7)} ${target}  ${what}  until ${String(o.expiresAt)}  "${String(o.reason)}"`
}

/** A terminal-sized view of /status: per route the shift and each upstream. */
export function renderStatus (s: any): string {
  const lines: string[] = [`policy ${String(s.policy?.version ?? '?')}  uptime ${Math.round(Number(s.gateway?.uptimeSeconds ?? 0))} s`]
  for (const r of s.routes ?? []) {
    const sh = r.shift
    lines.push('', `route ${String(r.name)}${sh == null ? '' : `  shift ${String(sh.phase)}, backup share ${pct(sh.applied)}`}`)
    for (const u of r.upstreams ?? []) {
      const state = [u.available === false ? 'OUT' : 'in', u.breaker == null ? null : `breaker ${String(u.breaker)}`, u.healthCheck == null ? null : `health ${String(u.healthCheck)}`, u.held == null ? null : `held by an operator: ${u.held.drained === true ? 'drained' : `breaker ${String(u.held.breaker)}`}`].filter(x => x !== null).join(', ')
      lines.push(`  ${String(u.name).padEnd(20)} ${String(u.role).padEnd(8)} share ${pct(u.share).padStart(6)}  ${state}`)
    }
  }
  const ovs = s.overrides ?? []
  lines.push('', ovs.length === 0 ? 'no overrides' : 'overrides:')
  for (const o of ovs) lines.push(`  ${describe(o)}`)
  return lines.join('\n') + '\n'
}
