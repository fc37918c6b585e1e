/**
 * A drill's fresh world: the two fault upstreams (pay-primary, pay-backup,
 * both 200 ms by baseline) and an in-process gateway on a temp copy of the
 * drill policy. The policy is the fixed template below and nothing else (the
 * README defaults must meet the targets); only the kill drill adds a health
 * check. Any failure to come up (a port, a rejected policy, a preflight that
 * is not 200) is a SetupError, which the CLI reports with exit code 2, and
 * whatever did start is closed again before it is thrown.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { Gateway } from '../../../gateway/app/gateway.js'
import { PolicyError, formatIssue } from '../../../gateway/policy/issues.js'
import { selfSignedLocalhost } from '../self-signed.js'
import { startFaultUpstream, type FaultUpstream } from '../fault-upstream.js'
import { BACKUP, PRIMARY } from './scenarios.js'

export const BASE_LATENCY_MS = 200

/** A harness that could not be set up; no figure of the drill is meaningful. */
export class SetupError extends Error {
  override readonly name = 'SetupError'
}

/**
 * Retries in the drill policy: `connect-failure` (what payments need: only a
 * request that was never sent is sent again), or the README's defaults
 * (`retry: {}`: connect failure, reset, 502, 503, 504 within the budget),
 * which a GET route would have.
 */
export type DrillRetry = 'connect-failure' | 'defaults'

/** The drill policy for the two upstream URLs (port 0 everywhere: addresses come from gw.addresses()). */
export function drillPolicy (primaryUrl: string, backupUrl: string, healthCheck: boolean, retry: DrillRetry = 'connect-failure', caFile: string | null = null): string {
  return `version: drill
listeners: [{ name: public, host: 127.0.0.1, port: 0 }]
admin: { host: 127.0.0.1, port: 0 }
${caFile === null ? '' : `defaults: { upstreamTls: { ca: ${JSON.stringify(caFile)} } }
`}routes:
  - name: payments
    match: { pathPrefix: /pay/ }
    upstreams:
      - { name: ${PRIMARY}, url: ${JSON.stringify(primaryUrl)}, role: primary }
      - { name: ${BACKUP}, url: ${JSON.stringify(backupUrl)}, role: backup }
    shift: { threshold: 1s, recover: { threshold: 500ms } }
    retry: ${retry === 'defaults' ? '{}' : '{ on: [connect-failure] }'}
    idempotency: {}
${healthCheck ? '    healthCheck: { path: /healthz, interval: 1s }\n' : ''}`
}

export interface DrillSetup {
  readonly primary: FaultUpstream
  readonly backup: FaultUpstream
  readonly gw: Gateway
  /** The public listener, e.g. `http://127.0.0.1:41234`. */
  readonly url: string
  /** The policy text the gateway runs. */
  readonly policy: string
  /** Gateway first (it drains), then the upstreams (which destroy any hung socket). Idempotent. */
  close (): Promise<void>
}

/** Starts everything and checks it with one request. */
export async function startDrillSetup (opts: { healthCheck: boolean, retry?: DrillRetry, maxReceived: number }): Promise<DrillSetup> {
  const started: FaultUpstream[] = []
  let gw: Gateway | undefined
  const closeAll = async (): Promise<void> => {
    try {
      await gw?.close()
    } finally {
      await Promise.all(started.map(async u => await u.close()))
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'drill-'))
  try {
    const tls = DRILL_TLS ? selfSignedLocalhost(dir, 'upstream') : null
    for (const name of [PRIMARY, BACKUP]) {
      started.push(await startFaultUpstream({ name, baseline: { latencyMs: BASE_LATENCY_MS }, maxReceived: opts.maxReceived, ...(tls === null ? {} : { tls }) }))
    }
    const [primary, backup] = started as [FaultUpstream, FaultUpstream]
    const policy = drillPolicy(primary.url, backup.url, opts.healthCheck, opts.retry, tls?.certFile ?? null)
    gw = await startGateway(policy, dir)
    const listener = gw.addresses().listeners[0]
    if (listener === undefined) throw new SetupError('the gateway opened no listener')
    const url = `http://127.0.0.1:${listener.port}`
    await preflight(url)
    let closing: Promise<void> | undefined
    return { primary, backup, gw, url, policy, close: async () => { closing ??= closeAll(); await closing } }
  } catch (err) {
    await closeAll().catch(() => {})
    throw err instanceof SetupError ? err : new SetupError(`setup failed: ${(err as Error).message}`, { cause: err })
  } finally {
    // watch: false never reads the policy or its files again.
    await rm(dir, { recursive: true, force: true })
  }
}

/** DRILL_TLS=1: the upstreams serve HTTPS (the gateway trusts their certificate through defaults.upstreamTls). */
export const DRILL_TLS = process.env.DRILL_TLS === '1'

/** Writes the policy to a file in `dir` and starts the gateway on it (no watching). */
async function startGateway (policy: string, dir: string): Promise<Gateway> {
  const file = join(dir, 'drill.yaml')
  try {
    await writeFile(file, policy)
    return await Gateway.start({ policyFile: file, watch: false })
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err
    throw new SetupError(`the drill policy is rejected:\n${err.issues.map(i => '  ' + formatIssue(i)).join('\n')}`, { cause: err })
  }
}

/** One unmarked request before the clock starts, so a broken setup fails loudly instead of as 100 % errors. */
async function preflight (url: string): Promise<void> {
  const agent = new Agent({ connections: 1 })
  try {
    const res = await request(`${url}/pay/checkout`, { method: 'POST', body: '{"amount":1}', headers: { 'content-type': 'application/json' }, dispatcher: agent, headersTimeout: 5000, bodyTimeout: 5000 })
    await res.body.dump()
    if (res.statusCode !== 200) throw new SetupError(`preflight POST /pay/checkout answered ${res.statusCode}, expected 200`)
  } finally {
    await agent.close()
  }
}
