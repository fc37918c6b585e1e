/**
 * `npm run drills`: named self-healing drills, each on its own fresh pair of
 * fault upstreams and in-process gateway running the README-default drill
 * policy (scripts/lib/drills/). Each drill prints what is expected and every
 * figure against its target; a summary table follows, and everything goes to
 * bench/results/drills-<ISO timestamp>.json.
 *
 *   npm run drills                     # all, in order (a few minutes)
 *   npm run drills -- spike kill       # only these
 *   npm run drills -- --list           # names and what each expects
 *   DRILL_RATE=100 npm run drills      # load rate (default 200 req/s)
 *   DRILL_TLS=1 npm run drills         # the upstreams serve HTTPS (same targets)
 *
 * Exit code: 0 every target met, 1 a target missed, 2 a setup error (or an
 * unknown drill name), 130 interrupted. The process exits by itself: every
 * server, socket and timer is closed after each drill (a leak is reported).
 */
import { fileURLToPath } from 'node:url'
import { headerLines, listLines, resultLines, summaryLines, writeReport } from './lib/drills/report.js'
import { DEFAULT_RUN, runDrill, type DrillResult, type RunConfig } from './lib/drills/run.js'
import { DRILLS, findDrill, type Drill } from './lib/drills/scenarios.js'
import { DRILL_TLS } from './lib/drills/setup.js'

const out = (line: string): void => { process.stdout.write(line + '\n') }
const fail = (line: string): void => { process.stderr.write(`drills: ${line}\n`) }

const args = process.argv.slice(2)
if (args.includes('--help') || args.includes('-h')) {
  out('usage: npm run drills [-- [--list] [NAME ...]]   (DRILL_RATE sets req/s, default 200)')
  for (const line of listLines()) out('  ' + line)
} else if (args.includes('--list')) {
  for (const line of listLines()) out(line)
} else {
  process.exitCode = await main(args)
  // Nothing should keep the process alive now; if something does, say what instead of hanging silently.
  setTimeout(() => {
    fail(`still running 5 s after the last drill; open handles: ${process.getActiveResourcesInfo().join(', ')}`)
    process.exit(process.exitCode ?? 1)
  }, 5000).unref()
}

async function main (names: string[]): Promise<number> {
  const unknown = names.filter(n => n.startsWith('-') || findDrill(n) === undefined)
  if (unknown.length > 0) {
    fail(`unknown drill or option: ${unknown.join(', ')}; drills: ${DRILLS.map(d => d.name).join(', ')}`)
    return 2
  }
  const selected: Drill[] = names.length === 0 ? [...DRILLS] : DRILLS.filter(d => names.includes(d.name))
  const rate = process.env.DRILL_RATE === undefined || process.env.DRILL_RATE === '' ? DEFAULT_RUN.ratePerSec : Number(process.env.DRILL_RATE)
  if (!(rate > 0 && rate <= 2000)) {
    fail(`DRILL_RATE must be a number in (0, 2000], not ${process.env.DRILL_RATE ?? ''}`)
    return 2
  }
  const config: RunConfig = { ...DEFAULT_RUN, ratePerSec: rate }

  const abort = new AbortController()
  const onSigint = (): void => {
    if (abort.signal.aborted) process.exit(130)
    out('\ninterrupted: stopping the load and closing the drill (Ctrl-C again to quit at once)…')
    abort.abort()
  }
  process.on('SIGINT', onSigint)

  const startedAt = new Date()
  out(`drills: ${selected.map(d => d.name).join(', ')} at ${rate} req/s, ${config.warmupMs / 1000} s warm-up each${DRILL_TLS ? ', upstreams over HTTPS (DRILL_TLS=1)' : ''}`)
  const results: DrillResult[] = []
  try {
    for (const drill of selected) {
      if (abort.signal.aborted) break
      for (const line of headerLines(drill)) out(line)
      const result = await runDrill(drill, config, abort.signal, out)
      results.push(result)
      for (const line of resultLines(result)) out(line)
    }
  } finally {
    process.off('SIGINT', onSigint)
  }

  for (const line of summaryLines(results)) out(line)
  const dir = fileURLToPath(new URL('../bench/results/', import.meta.url))
  try {
    const file = await writeReport(dir, { ...config, drills: selected.map(d => d.name) }, startedAt, results)
    out(`\nresults: ${file}`)
  } catch (err) {
    fail(`could not write the results: ${(err as Error).message}`)
    return 2
  }
  if (abort.signal.aborted) return 130
  if (results.some(r => r.failure !== null)) return 2
  return results.every(r => r.pass) ? 0 : 1
}
