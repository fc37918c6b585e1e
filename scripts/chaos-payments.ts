/**
 * Chaos drill for payment-safe delivery: keyed and unkeyed `POST /pay/charge`
 * under resets, latency spikes and 503 bursts on pay-a / pay-b, client
 * re-sends of the same key (concurrent, later, with another body). Passes
 * when the upstreams received no key and no unkeyed request more than once.
 * Writes `bench/results/chaos-payments-<ISO>.json`.
 *
 * Usage: `node --import tsx scripts/chaos-payments.ts`
 *   CHAOS_SECONDS (20), CHAOS_RATE (100 req/s), CHAOS_SEED (5; same seed = same sends and chaos schedule)
 * Exit code: 0 pass, 1 fail (duplicates or a broken run), 2 the gateway rejects the policy.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chaosOptionsFromEnv, reportLines, runPaymentChaos, PolicyRejectedError } from './lib/chaos-payments.js'

const out = (line: string): void => { process.stdout.write(line + '\n') }
const opts = chaosOptionsFromEnv()
out(`chaos-payments: ${opts.ratePerSec} req/s POST /pay/charge for ${opts.seconds} s, seed ${opts.seed} (CHAOS_SEED=${opts.seed} repeats this run)`)
try {
  const result = await runPaymentChaos({ ...opts, log: out })
  const dir = fileURLToPath(new URL('../bench/results/', import.meta.url))
  await mkdir(dir, { recursive: true })
  const file = join(dir, `chaos-payments-${result.startedAt.replace(/[:.]/g, '-')}.json`)
  await writeFile(file, JSON.stringify({ scenario: 'chaos-payments', node: process.version, ...result }, null, 2) + '\n')
  out('')
  for (const line of reportLines(result)) out(line)
  out(`results: ${file}`)
  process.exitCode = result.verdict.pass ? 0 : 1
} catch (err) {
  if (err instanceof PolicyRejectedError) {
    process.stderr.write(`chaos-payments: ${err.message}\n`)
    process.exitCode = 2
  } else {
    process.stderr.write(`chaos-payments: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = 1
  }
}
