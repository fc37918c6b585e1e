/**
 * `npm run demo`: scenario S1 end to end, live. The payment primary goes from
 * 200 ms to 5 s under 200 req/s and heals later; one line per second shows
 * what the client sees and the share the gateway reports, gateway events
 * appear as they happen, and the run ends with the event log, the S1
 * targets and the gateway's post-incident report checked against them.
 * Exit code 0 when every target is met and the report agrees, 1 otherwise.
 *
 * `S1_FAST=1`: short timings (spike at 3 s, heal at 8 s, end at 24 s).
 * `--timeline`: also print the timeline by intended send second.
 */
import {
  runS1Scenario, s1ConfigFromEnv, summaryLines, stats, S1_PRIMARY,
  type RequestResult, type ScenarioEvent, type TimelineRow
} from './lib/s1-scenario.js'

const config = s1ConfigFromEnv()
const out = (line = ''): void => { process.stdout.write(line + '\n') }
const secs = (ms: number): string => `${Number((ms / 1000).toFixed(1))}s`
const pct = (x: number | null | undefined): string => x === null || x === undefined ? '-' : `${Math.round(x * 100)}%`
const ms = (x: number | null): string => x === null ? '-' : `${Math.round(x)}ms`

out('S1: payment channel latency spike during a sale (docs/scenarios.md)')
out(`  load      ${config.ratePerSec} req/s POST /pay/checkout for ${secs(config.endAtMs)}, open loop: sent on schedule, latency from the intended send time`)
out(`  t=0s      ${S1_PRIMARY} and pay-backup answer in ${config.baseLatencyMs} ms`)
out(`  t=${secs(config.spikeAtMs).padEnd(7)} ${S1_PRIMARY} goes ${config.baseLatencyMs} ms → ${config.spikeLatencyMs / 1000} s (a throttled bank interface)`)
out(`  t=${secs(config.healAtMs).padEnd(7)} ${S1_PRIMARY} heals (back to ${config.baseLatencyMs} ms)`)
out('  targets   first shift ≤ 2 s, ≥ 50 % on the backup ≤ 3 s, ≥ 90 % ≤ 5 s, no errors,')
out('            no reversal during the spike, fully back on the primary ≤ 30 s after healing')
out()

/** Answers by the second they came back in: what a dashboard would show live. */
const sentBySecond: number[] = []
const backBySecond = new Map<number, RequestResult[]>()
let inflight = 0
/** Spike/heal markers wait for the row of the second they happened in, so rows stay in time order. */
const markers: Array<{ at: number, text: string }> = []

const HEAD = `${'t'.padStart(5)}  ${'sent'.padStart(5)}  ${'back'.padStart(5)}  ${'inflight'.padStart(8)}  ${'p50'.padStart(7)}  ${'p99'.padStart(7)}  ${'backup'.padStart(6)}  ${'errors'.padStart(6)}  ${'gw shift'.padStart(8)}`

const run = runS1Scenario(config, {
  onStart: ({ gatewayUrl, adminUrl }) => {
    out(`gateway ${gatewayUrl} (admin ${adminUrl}) on policies/demo.yaml, demo services on free ports`)
    out('each second: requests sent, answers back (with their p50/p99, share served by the backup, errors),')
    out('still in flight, and the share the gateway reports as shifted (GET /status)')
    out()
    out(HEAD)
  },
  onPhase: (phase, at) => {
    markers.push({
      at,
      text: phase === 'spike'
        ? `----- t=${secs(at)}: ${S1_PRIMARY} goes ${config.baseLatencyMs} ms → ${config.spikeLatencyMs / 1000} s -----`
        : `----- t=${secs(at)}: ${S1_PRIMARY} heals -----`
    })
  },
  onSend: intendedMs => {
    const s = Math.floor(intendedMs / 1000)
    sentBySecond[s] = (sentBySecond[s] ?? 0) + 1
    inflight++
  },
  onResult: r => {
    inflight--
    const s = Math.floor((r.intendedMs + r.latencyMs) / 1000)
    backBySecond.set(s, [...backBySecond.get(s) ?? [], r])
  },
  onSecond: (t, share, events) => {
    const back = backBySecond.get(t) ?? []
    backBySecond.delete(t)
    const st = stats(back)
    while (markers[0] !== undefined && markers[0].at < (t + 1) * 1000) out(markers.shift()?.text)
    out(`${`${t}s`.padStart(5)}  ${String(sentBySecond[t] ?? 0).padStart(5)}  ${String(back.length).padStart(5)}  ${String(inflight).padStart(8)}  ${ms(st.p50Ms).padStart(7)}  ${ms(st.p99Ms).padStart(7)}  ${pct(st.backupShare).padStart(6)}  ${String(st.errors).padStart(6)}  ${pct(share).padStart(8)}`)
    for (const e of events) out(`        ↳ ${eventLine(e)}`)
  }
})

try {
  const result = await run
  if (process.argv.includes('--timeline')) {
    out()
    out('Timeline by intended send second (latency and backup share of the requests sent in that second):')
    out(`${'t'.padStart(5)}  ${'sent'.padStart(5)}  ${'done'.padStart(5)}  ${'p50'.padStart(7)}  ${'p99'.padStart(7)}  ${'errors'.padStart(6)}  ${'backup'.padStart(6)}  ${'gw shift'.padStart(8)}`)
    for (const row of result.timeline) out(timelineLine(row))
  }
  out()
  out(`Event log (${result.events.length} event${result.events.length === 1 ? '' : 's'}, times since the load started):`)
  for (const e of result.events) out(`  ${eventLine(e)}`)
  if (result.events.length === 0) out('  (none)')
  for (const note of result.notes) out(`  note: ${note}`)
  out()
  out('Summary')
  for (const line of summaryLines(result.summary, config)) out(line)
  const inc = result.incident
  out()
  out(`The gateway's own account: incident ${inc.id ?? '(none)'} (GET /incidents/${inc.id ?? 'ID'}/report; gateway report prints it on a running gateway)`)
  if (inc.report !== null) for (const line of inc.report.trimEnd().split('\n')) out(`  │ ${line}`)
  out('Report against the summary above:')
  for (const line of inc.lines) out(`  ${line}`)
  process.exitCode = result.summary.pass && inc.pass ? 0 : 1
} catch (err) {
  process.stderr.write(`demo: ${(err as Error).message}\n`)
  process.exitCode = 1
}

function eventLine (e: ScenarioEvent): string {
  const value = (v: number | string | undefined): string => typeof v === 'number' ? pct(v) : v ?? '-'
  const move = e.before !== undefined || e.after !== undefined ? ` ${value(e.before)} → ${value(e.after)}` : ''
  // The detail already says what was measured; the bare numbers only when it is missing.
  const measure = e.detail !== '' ? `  ${e.detail}` : e.measured !== undefined ? `  measured ${e.measured}${e.threshold !== undefined ? `, threshold ${e.threshold}` : ''}` : ''
  const who = [e.route, e.upstream].filter(x => x !== undefined && x !== '').join('/')
  return `${`${(e.atMs / 1000).toFixed(2)}s`.padStart(7)}  #${String(e.seq).padEnd(3)} ${e.kind.padEnd(15)} ${who}${move}${e.enforced ? '' : ' [shadow]'}${measure}`
}

function timelineLine (r: TimelineRow): string {
  return `${`${r.t}s`.padStart(5)}  ${String(r.sent).padStart(5)}  ${String(r.completed).padStart(5)}  ${ms(r.p50Ms).padStart(7)}  ${ms(r.p99Ms).padStart(7)}  ${String(r.errors).padStart(6)}  ${pct(r.backupShare).padStart(6)}  ${pct(r.gatewayShare).padStart(8)}`
}
