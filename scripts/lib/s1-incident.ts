/**
 * The incident S1 leaves behind, read from the gateway's admin API as an
 * operator would (GET /incidents, /incidents/:id/report) and checked against
 * the demo's own summary: the Markdown report's detection time, first shift,
 * shift steps with their measured values, restore time and client impact
 * must say what the client-side measurement says.
 */
import { request } from 'undici'

export interface IncidentCheck {
  /** Incidents of the S1 route the gateway recorded during the run. */
  readonly count: number
  readonly id: string | null
  readonly report: string | null
  /** One line per comparison, "ok" or "MISMATCH". */
  readonly lines: string[]
  readonly pass: boolean
}

export interface SummaryFacts {
  readonly firstShiftMs: number | null
  readonly restoreGatewayMs: number | null
  readonly errors: number
  readonly requests: number
  /** Enforced shift.step events of the route in the demo's event log. */
  readonly steps: number
}

const TOLERANCE_MS = 10 // the report prints seconds with two decimals

export async function checkIncident (adminUrl: string, route: string, wallAt0: number, spikeAtMs: number, healAtMs: number, s: SummaryFacts): Promise<IncidentCheck> {
  const list = await json(`${adminUrl}/incidents`) as { incidents?: Array<{ id: string, route: string }> } | null
  const mine = (list?.incidents ?? []).filter(i => i.route === route)
  const inc = mine[0]
  if (inc === undefined) return { count: 0, id: null, report: null, lines: ['MISMATCH no incident recorded for the route'], pass: false }
  const res = await request(`${adminUrl}/incidents/${encodeURIComponent(inc.id)}/report`)
  const report = await res.body.text()
  const lines: string[] = []
  let pass = true
  const say = (ok: boolean, text: string): void => {
    pass &&= ok
    lines.push(`${ok ? 'ok      ' : 'MISMATCH'} ${text}`)
  }
  say(mine.length === 1, `incidents of ${route}: ${mine.length} (one expected)`)
  const opened = Date.parse(/\*\*Opened:\*\* (\S+)/.exec(report)?.[1] ?? '')
  const rel = (label: string): number | null => {
    const m = new RegExp(`\\*\\*${label}:\\*\\* \\+(\\d+\\.\\d+) s`).exec(report)
    return m === null || Number.isNaN(opened) ? null : opened + Number(m[1]) * 1000 - wallAt0
  }
  const near = (a: number | null, b: number | null): boolean => a !== null && b !== null && Math.abs(a - b) <= TOLERANCE_MS
  const fmt = (ms: number | null): string => ms === null ? 'none' : `${(ms / 1000).toFixed(2)} s`
  const firstShift = rel('First shift')
  const reportFirst = firstShift === null ? null : firstShift - spikeAtMs
  say(near(reportFirst, s.firstShiftMs), `first shift: report ${fmt(reportFirst)} after the spike, summary ${fmt(s.firstShiftMs)}`)
  const detected = Number.isNaN(opened) ? null : opened - wallAt0 - spikeAtMs
  say(detected !== null && s.firstShiftMs !== null && detected <= s.firstShiftMs + TOLERANCE_MS, `detected (opened): report ${fmt(detected)} after the spike, not after the first shift`)
  const back = rel('Traffic fully back on the primaries')
  const reportBack = back === null ? null : back - healAtMs
  say(near(reportBack, s.restoreGatewayMs), `back on the primaries: report ${fmt(reportBack)} after healing, summary ${fmt(s.restoreGatewayMs)}`)
  const steps = [...report.matchAll(/^\| \+\d+\.\d\d s \| shift\.step \|[^|]*\|[^|]+\| (\d+(?:\.\d+)?) \/ (\d+(?:\.\d+)?) \| yes \|/gm)]
  say(steps.length === s.steps, `shift steps with measured / threshold values: report ${steps.length}, event log ${s.steps}`)
  const fivexx = Number(/Answered 5xx: (\d+)/.exec(report)?.[1] ?? NaN)
  say(fivexx <= s.errors, `5xx answered while it lasted: report ${fivexx}, client errors over the whole run ${s.errors}`)
  const requests = Number(/Requests to the route while it lasted: (\d+)/.exec(report)?.[1] ?? NaN)
  say(requests > 0 && requests <= s.requests + 1, `requests while it lasted: report ${requests}, the run sent ${s.requests} (+1 preflight)`)
  say(/\*\*Status:\*\* resolved/.test(report), 'resolved once traffic was back')
  return { count: mine.length, id: inc.id, report, lines, pass }
}

async function json (url: string): Promise<unknown> {
  const res = await request(url)
  return res.statusCode === 200 ? await res.body.json() : (await res.body.dump(), null)
}
