/**
 * The post-incident report of one incident, in Markdown: summary, impact,
 * what the gateway did and when (the timeline of its decisions with the
 * measured values), and what operators did (policy reloads, overrides set, cleared or expired).
 */
import type { GatewayEvent } from '../events/types.js'
import type { Incident } from './tracker.js'

const DECISIONS = new Set(['overload.shedding', 'overload.cleared', 'overload.limit', 'shift.step', 'shift.ramp', 'shift.hold', 'shift.restored', 'breaker.open', 'breaker.halfOpen', 'breaker.close', 'outlier.eject', 'outlier.return', 'probe.flip'])

export function renderReport (inc: Incident): string {
  const rel = (t: number): string => `+${((t - inc.openedT) / 1000).toFixed(2)} s`
  const first = inc.events[0]
  const firstShift = inc.events.find(e => e.kind === 'shift.step' && e.enforced)
  const restored = inc.events.find(e => e.kind === 'shift.restored')
  const lines: string[] = []
  lines.push(`# Incident ${inc.id}: route ${inc.route}`, '')
  lines.push('## Summary', '')
  lines.push(`- **Status:** ${inc.status}${inc.resolvedT === null ? '' : `, resolved after ${((inc.resolvedT - inc.openedT) / 1000).toFixed(2)} s`}`)
  lines.push(`- **Severity:** ${inc.severity} (${SEVERITY[inc.severity]})`)
  lines.push(`- **Opened:** ${inc.openedAt}${first === undefined ? '' : ` — detected: ${cell(first.detail)}`}`)
  if (firstShift !== undefined) lines.push(`- **First shift:** ${rel(firstShift.t)} (${fmtShare(firstShift.before)} → ${fmtShare(firstShift.after)} of the traffic on the backups)`)
  lines.push(`- **Peak backup share:** ${Math.round(inc.peakBackupShare * 100)} %`)
  if (restored !== undefined) lines.push(`- **Traffic fully back on the primaries:** ${rel(restored.t)}`)
  if (inc.resolvedAt !== null) lines.push(`- **Resolved:** ${inc.resolvedAt}`)
  lines.push(`- **Upstreams out at some point:** ${inc.upstreams.length === 0 ? 'none' : inc.upstreams.join(', ')}`)
  lines.push(`- **Policy version(s):** ${inc.policyVersions.join(', ')}`, '')
  const i = inc.impact
  lines.push('## Impact on clients', '')
  lines.push(`- Requests to the route while it lasted: ${i.requests}`)
  lines.push(`- Answered 5xx: ${i.serverErrors}${i.requests > 0 ? ` (${(100 * i.serverErrors / i.requests).toFixed(2)} %)` : ''}`)
  lines.push(`- Not completed (client gone, or cut): ${i.incomplete}`)
  lines.push(`- p99 of request durations: ${i.p99AtMostSeconds === null ? 'no requests' : `at most ${i.p99AtMostSeconds === Infinity ? 'over 60' : i.p99AtMostSeconds} s`}`, '')
  lines.push('## What the gateway did', '')
  lines.push('| when | kind | upstream | before → after | measured / threshold | applied | detail |', '| --- | --- | --- | --- | --- | --- | --- |')
  for (const e of inc.events.filter(x => DECISIONS.has(x.kind))) lines.push(row(e, rel(e.t)))
  if (inc.droppedEvents > 0) lines.push('', `(${inc.droppedEvents} later events not kept)`)
  lines.push('', '## What operators did', '')
  const ops = inc.events.filter(e => e.kind.startsWith('policy.') || e.kind.startsWith('override.'))
  if (ops.length === 0) lines.push('No operator action was recorded during the incident.')
  else for (const e of ops) lines.push(`- ${rel(e.t)} ${e.kind}: ${cell(e.detail)}`)
  return `${lines.join('\n')}\n`
}

const SEVERITY: Record<Incident['severity'], string> = {
  upstream: 'one upstream out, the route served by the others',
  degraded: 'traffic moved off the primaries, or several upstreams out',
  unavailable: 'at some point no upstream could take the route\'s traffic'
}

function row (e: GatewayEvent, when: string): string {
  const ba = e.before === undefined && e.after === undefined ? '' : `${fmt(e.before, e.kind)} → ${fmt(e.after, e.kind)}`
  const mt = e.measured === undefined ? '' : `${e.measured}${e.threshold === undefined ? '' : ` / ${e.threshold}`}`
  return `| ${when} | ${e.kind} | ${e.upstream ?? ''} | ${ba} | ${mt} | ${e.enforced ? 'yes' : 'shadow'} | ${cell(e.detail)} |`
}

const fmt = (v: number | string | undefined, kind: string): string => v === undefined ? '' : kind.startsWith('shift.') ? fmtShare(v) : String(v)
const fmtShare = (v: number | string | undefined): string => typeof v === 'number' ? `${Math.round(v * 100)} %` : String(v ?? '')
/** Table-safe text: no newlines, `|` escaped. */
const cell = (s: string): string => s.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|')
