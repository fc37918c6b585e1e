/**
 * Starts a real gateway on port 0 in front of real fault upstreams, from a
 * policy written to a temp file. Everything is closed in t.teardown.
 */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Gateway, type GatewayOptions } from '../../gateway/app/gateway.js'
import { startFaultUpstream, type FaultUpstream, type FaultUpstreamOptions } from '../../scripts/lib/fault-upstream.js'

export interface Teardown { teardown (fn: () => unknown): void }

export async function upstream (t: Teardown, opts: FaultUpstreamOptions = {}): Promise<FaultUpstream> {
  const u = await startFaultUpstream(opts)
  t.teardown(async () => await u.close())
  return u
}

/** Writes `yaml` to a new temp dir and returns the file path. */
/** Temp folders made by policyFile, removed when the test process exits. */
const tempDirs: string[] = []
process.once('exit', () => { for (const d of tempDirs) rmSync(d, { recursive: true, force: true }) })

export async function policyFile (yaml: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-test-'))
  tempDirs.push(dir)
  const file = join(dir, 'policy.yaml')
  await writeFile(file, yaml)
  return file
}

/** Listener + admin on port 0 and the given routes block (YAML, indented by 2). */
export function policyYaml (routes: string, extra = ''): string {
  return `version: test
listeners:
  - name: public
    host: 127.0.0.1
    port: 0
admin:
  host: 127.0.0.1
  port: 0
${extra}
routes:
${routes}`
}

export interface Started {
  readonly gw: Gateway
  readonly file: string
  /** http://127.0.0.1:port of the public listener. */
  readonly url: string
  readonly adminUrl: string
}

export async function startGateway (t: Teardown, yaml: string, opts: Partial<GatewayOptions> = {}): Promise<Started> {
  const file = await policyFile(yaml)
  const gw = await Gateway.start({ policyFile: file, watch: false, ...opts })
  t.teardown(async () => await gw.close())
  const a = gw.addresses()
  const l = a.listeners[0]
  if (l === undefined || a.admin === null) throw new Error('test policy needs a listener and an admin block')
  return { gw, file, url: `http://127.0.0.1:${l.port}`, adminUrl: `http://127.0.0.1:${a.admin.port}` }
}

/** A route block with the given upstreams (name → url) and optional extra route keys. */
export function route (name: string, prefix: string, ups: ReadonlyArray<{ name: string, url: string, weight?: number, role?: 'primary' | 'backup' }>, extra = ''): string {
  const list = ups.map(u => `      - name: ${u.name}
        url: ${u.url}${u.weight === undefined ? '' : `\n        weight: ${u.weight}`}${u.role === undefined ? '' : `\n        role: ${u.role}`}`).join('\n')
  return `  - name: ${name}
    match:
      pathPrefix: ${prefix}
${extra}    upstreams:
${list}
`
}

/**
 * A shift block with short windows for tests (route keys, indented by 4);
 * `extra` goes inside the block, before signal. Probes are off, so the
 * step-by-step mechanics (trial step, evidence wait, minShare) are what is
 * tested; test/self-healing.test.ts runs the defaults, probes included.
 */
export const fastShift = (extra = ''): string => `    timeouts: { responseHeaders: 10s }
    shift:
${extra}      probe: false
      signal: { quantile: p95, window: 1s, minSamples: 5 }
      threshold: 300ms
      for: 100ms
      step: 30%
      interval: 100ms
      minShare: 10%
      cooldown: 1s
      recover: { threshold: 100ms, for: 500ms, step: 50%, interval: 200ms }
`

/**
 * A payment-like route (primary p, backup b, 20 ms each) with the README's
 * shift thresholds and short ramp-back rails, for tests that watch a spike
 * from the admin API (metrics, incidents).
 */
export async function shiftRoute (t: Teardown): Promise<Started & { p: FaultUpstream, b: FaultUpstream }> {
  const p = await upstream(t, { name: 'p', baseline: { latencyMs: 20 } })
  const b = await upstream(t, { name: 'b', baseline: { latencyMs: 20 } })
  const started = await startGateway(t, policyYaml(route('pay', '/', [{ name: 'p', url: p.url }, { name: 'b', url: b.url, role: 'backup' }],
    '    shift: { threshold: 1s, cooldown: 1s, recover: { threshold: 500ms, for: 500ms, step: 50%, interval: 250ms } }\n')))
  return { ...started, p, b }
}
