/**
 * The local services the README quick start routes to: a primary and a backup
 * for payments and for products, and an SMS provider, each a fault upstream whose behaviour can be
 * changed over HTTP: `GET <url>/_fault` shows the fault in effect, `POST`
 * replaces it (over the baseline latency, not merged with the previous
 * fault), `DELETE` heals. The keys and what they do: README, "The demo
 * services and their fault API". Tests pass `ports` of 0 (any free port) so
 * they never clash with a running `npm start`.
 *
 * Run directly: `node --import tsx scripts/demo-upstreams.ts`.
 */
import { pathToFileURL } from 'node:url'
import { startFaultUpstream, type FaultUpstream } from './lib/fault-upstream.js'

/** Names of the demo upstreams. */
export type DemoName = 'pay-primary' | 'pay-backup' | 'product-primary' | 'product-backup' | 'sms-provider'

/** Names in start/print order. */
export const DEMO_NAMES: readonly DemoName[] = ['pay-primary', 'pay-backup', 'product-primary', 'product-backup', 'sms-provider']

/** Fixed ports the README and policies/*.yaml refer to. */
export const DEMO_PORTS: Readonly<Record<DemoName, number>> = {
  'pay-primary': 9101,
  'pay-backup': 9102,
  'product-primary': 9201,
  'product-backup': 9202,
  'sms-provider': 9301
}

/**
 * Baseline latency per upstream: small, so the quick start feels snappy, yet
 * the payment services are visibly slower than the product ones.
 */
export const DEMO_BASE_LATENCY_MS: Readonly<Record<DemoName, number>> = {
  'pay-primary': 20,
  'pay-backup': 30,
  'product-primary': 5,
  'product-backup': 5,
  'sms-provider': 10
}

/** Options of {@link startDemoUpstreams}. */
export interface DemoUpstreamsOptions {
  /** Address to bind (default 127.0.0.1). */
  host?: string
  /** Port overrides (0 = any free port, handy in tests). */
  ports?: Partial<Record<DemoName, number>>
  /**
   * Baseline latency overrides. The baseline is what `DELETE /_fault` returns
   * to, and injected faults are merged over it.
   */
  baseLatencyMs?: Partial<Record<DemoName, number>>
}

/** The running demo upstreams. */
export interface DemoUpstreams {
  upstreams: Record<DemoName, FaultUpstream>
  /** Closes every upstream (destroying open sockets). */
  close (): Promise<void>
}

/**
 * Starts the demo upstreams. If one cannot start (e.g. port in use) the
 * others are closed again before the error is thrown, so nothing leaks.
 */
export async function startDemoUpstreams (opts: DemoUpstreamsOptions = {}): Promise<DemoUpstreams> {
  const host = opts.host ?? '127.0.0.1'
  const results = await Promise.allSettled(DEMO_NAMES.map(name => startFaultUpstream({
    name,
    host,
    port: opts.ports?.[name] ?? DEMO_PORTS[name],
    baseline: { latencyMs: opts.baseLatencyMs?.[name] ?? DEMO_BASE_LATENCY_MS[name] }
  })))
  const started = results.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  const failed = results.find(r => r.status === 'rejected')
  if (failed !== undefined) {
    await Promise.all(started.map(u => u.close()))
    throw failed.reason
  }
  const upstreams = Object.fromEntries(started.map(u => [u.name, u])) as Record<DemoName, FaultUpstream>
  return {
    upstreams,
    close: async () => { await Promise.all(started.map(u => u.close())) }
  }
}

async function main (): Promise<void> {
  let demo: DemoUpstreams
  try {
    demo = await startDemoUpstreams()
  } catch (err) {
    console.error(`demo-upstreams: cannot start: ${(err as Error).message}`)
    process.exitCode = 1
    return
  }
  const width = Math.max(...DEMO_NAMES.map(n => n.length)) + 2
  for (const name of DEMO_NAMES) {
    const u = demo.upstreams[name]
    console.log(`${name.padEnd(width)}${u.url}  (control: POST ${u.url}/_fault)`)
  }
  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    // A second signal means "now": do not wait for a stuck close.
    if (stopping) process.exit(130)
    stopping = true
    console.log(`demo-upstreams: ${signal}, closing`)
    demo.close().then(
      () => { process.exitCode = 0 },
      (err: unknown) => {
        console.error(`demo-upstreams: close failed: ${(err as Error).message}`)
        process.exitCode = 1
      }
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

const entry = process.argv[1]
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  void main()
}
