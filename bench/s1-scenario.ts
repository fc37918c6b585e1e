/**
 * Scenario S1 headless: the same run as `npm run demo` (payment primary
 * 200 ms → 5 s under 200 req/s, then healed) without the live view. Writes
 * config, per-second timeline, gateway events and summary to
 * `bench/results/s1-<timestamp>.json` and prints the summary and the path.
 * Exit code 0 when every S1 target is met, 1 otherwise.
 *
 * Usage: `node --import tsx bench/s1-scenario.ts` (`S1_FAST=1` for short
 * timings, `S1_RATE=n` for another rate).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { runS1Scenario, s1ConfigFromEnv, summaryLines } from '../scripts/lib/s1-scenario.js'

const config = s1ConfigFromEnv()
process.stdout.write(`S1 scenario: ${config.ratePerSec} req/s for ${config.endAtMs / 1000} s, spike at ${config.spikeAtMs / 1000} s, heal at ${config.healAtMs / 1000} s…\n`)
try {
  const result = await runS1Scenario(config)
  const dir = fileURLToPath(new URL('./results/', import.meta.url))
  await mkdir(dir, { recursive: true })
  const file = join(dir, `s1-${result.startedAt.replace(/[:.]/g, '-')}.json`)
  await writeFile(file, JSON.stringify({ scenario: 'S1', node: process.version, ...result }, null, 2) + '\n')
  for (const note of result.notes) process.stdout.write(`note: ${note}\n`)
  for (const line of summaryLines(result.summary, config)) process.stdout.write(line + '\n')
  process.stdout.write(`results: ${file}\n`)
  process.exitCode = result.summary.pass ? 0 : 1
} catch (err) {
  process.stderr.write(`s1-scenario: ${(err as Error).message}\n`)
  process.exitCode = 1
}
