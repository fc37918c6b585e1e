/**
 * What the drills print and write. Per drill: its name, what is expected,
 * each figure with its value, target and PASS/FAIL (or `info`), and the
 * counts behind them; at the end a summary table, one row per drill. The
 * JSON file (bench/results/drills-<ISO timestamp>.json) holds the run's
 * config, and per drill the policy, steps as they happened, figures with
 * targets and verdicts, counts, the event list and the arrival timeline.
 * Nothing here measures: it only formats DrillResults.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { formatValue, type Figure } from './figures.js'
import type { DrillResult, RunConfig } from './run.js'
import { DRILLS } from './scenarios.js'

/** The --list output: each drill with its one-line expectation. */
export function listLines (): string[] {
  const width = Math.max(...DRILLS.map(d => d.name.length))
  return DRILLS.map(d => `${d.name.padEnd(width)}  ${d.summary}`)
}

export function headerLines (d: { name: string, expect: string }): string[] {
  return ['', `== ${d.name} ==`, `Expect: ${d.expect}`]
}

const verdict = (f: Figure): string => f.pass === null ? 'info' : f.pass ? 'PASS' : 'FAIL'

/** The figures of one finished drill. */
export function resultLines (r: DrillResult): string[] {
  if (r.failure !== null) return [`  ${r.failure.kind === 'interrupted' ? 'INTERRUPTED' : `${r.failure.kind.toUpperCase()} ERROR`}: ${r.failure.message}`]
  const width = Math.max(...r.figures.map(f => f.label.length))
  const lines = r.figures.map(f => {
    const value = formatValue(f.value, f.unit).padStart(10)
    const target = f.target === null ? '' : `   target ${f.target}`
    return `  ${verdict(f)}  ${f.label.padEnd(width)} ${value}${target}${f.detail === undefined ? '' : `\n          ${f.detail}`}`
  })
  const c = r.counts
  const per = (o: Record<string, number>): string => Object.entries(o).map(([k, n]) => `${k} ${n}`).join(', ')
  lines.push(`  sent ${c.sent}; drill arrivals: ${per(c.arrivals)}; other requests (health checks, probes, preflight): ${per(c.unmarked)}` +
    `; events: ${r.events.length} (+ ${r.attemptFailed.total} attempt.failed)`)
  const judged = r.figures.filter(f => f.pass !== null)
  lines.push(`  ${r.pass ? 'PASS' : 'FAIL'}: ${judged.filter(f => f.pass === true).length}/${judged.length} targets met (${(r.durationMs / 1000).toFixed(1)} s)`)
  return lines
}

/** The final table. */
export function summaryLines (results: readonly DrillResult[]): string[] {
  const rows = results.map(r => {
    const judged = r.figures.filter(f => f.pass !== null)
    const failed = judged.filter(f => f.pass === false).map(f => f.id)
    const result = r.failure === null ? (r.pass ? 'PASS' : 'FAIL') : r.failure.kind === 'interrupted' ? 'INTERRUPTED' : 'ERROR'
    return [r.name, result, r.failure === null ? `${judged.length - failed.length}/${judged.length}` : '-', r.failure === null ? failed.join(', ') : r.failure.message.split('\n')[0] ?? '']
  })
  const head = ['drill', 'result', 'targets met', 'missed']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => '  ' + cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)).join('  ')
  return ['', 'Summary', line(head), line(widths.map(w => '-'.repeat(w))), ...rows.map(line)]
}

/** Writes the JSON report; resolves with its path. */
export async function writeReport (dir: string, config: RunConfig & { readonly drills: readonly string[] }, startedAt: Date, results: readonly DrillResult[]): Promise<string> {
  await mkdir(dir, { recursive: true })
  // Colons are not allowed in file names everywhere.
  const file = join(dir, `drills-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  const body = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    config: { ...config, node: process.version, bucketMs: 250, timesAre: 'ms after the fault was injected (arrivals and events: Date.now; client sends: performance.now)' },
    pass: results.every(r => r.failure === null && r.pass),
    drills: results
  }
  await writeFile(file, JSON.stringify(body, null, 2) + '\n')
  return file
}
