/**
 * `gateway run --workers 2` with the memory store, as a real process tree:
 * the listeners are shared by two workers, duplicates of one idempotency
 * key spread over both reach the upstream once (the keys are held by the
 * primary process, never per worker), /status answers for both workers,
 * an operator's drain holds on both workers and on the worker that replaces
 * a killed one, a worker killed outright is replaced, and SIGTERM drains both and exits
 * 0; a worker that cannot start (its
 * port held by another process) makes the whole process exit 1 with the
 * reason, as one process would.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { Agent, request } from 'undici'
import { upstream, policyFile, policyYaml, route } from './helpers/harness.js'
import { until } from './helpers/load.js'
import { killWithTest } from './helpers/children.js'

t.test('--workers 2, memory store: one key over both workers reaches the upstream once; status for both; SIGTERM drains', async t => {
  const pay = await upstream(t, { name: 'pay', baseline: { latencyMs: 200 } })
  const bk = await upstream(t, { name: 'bk' })
  const file = await policyFile(policyYaml(route('pay', '/', [{ name: 'pay', url: pay.url }, { name: 'bk', url: bk.url, role: 'backup' }], '    idempotency: { waitFor: 5s }\n')))
  const proc = spawn(process.execPath, ['--import', 'tsx', 'gateway/cli/main.ts', 'run', '--policy', file, '--workers', '2', '--no-watch'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GATEWAY_LOG_LEVEL: 'warn' } })
  let out = ''
  let err = ''
  proc.stdout.on('data', (c: Buffer) => { out += c.toString() })
  proc.stderr.on('data', (c: Buffer) => { err += c.toString() })
  const exit = new Promise<number | null>(resolve => proc.on('exit', code => resolve(code)))
  killWithTest(proc)
  t.teardown(() => { if (proc.exitCode === null) proc.kill('SIGKILL') })
  await until(() => /admin API on http:\/\/127\.0\.0\.1:(\d+)/.test(out) || proc.exitCode !== null, 60_000, 'the gateway to start')
  t.equal(proc.exitCode, null, `running (stderr: ${err.slice(0, 300)})`)
  const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1])
  const admin = Number(/admin API on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1])
  t.match(out, /2 workers/)

  // A fresh connection per request: the primary deals connections out round-robin.
  const answers = await Promise.all(Array.from({ length: 16 }, async () => {
    const agent = new Agent({ connections: 1 })
    try {
      const res = await request(`http://127.0.0.1:${port}/pay/charge`, { method: 'POST', dispatcher: agent, headers: { 'idempotency-key': 'k-1', 'content-type': 'application/json' }, body: '{"amount":1}' })
      return { status: res.statusCode, body: await res.body.text() }
    } finally { await agent.close() }
  }))
  t.equal(pay.count, 1, 'sixteen duplicates over two workers: the upstream saw one')
  t.same([...new Set(answers.map(a => a.status))], [200], 'all 200')
  t.equal(new Set(answers.map(a => a.body)).size, 1, 'all the same answer')

  const status = await (await request(`http://127.0.0.1:${admin}/status`)).body.json() as any
  t.equal(status.workers.length, 2, 'status answers for both workers')
  t.ok(status.workers.every((w: any) => w.requests > 0), `both workers took requests (${status.workers.map((w: any) => w.requests).join(', ')})`)
  t.equal(status.routes[0].delivery.requests + status.routes[0].delivery.replays + status.routes[0].delivery.waited >= 1, true)
  t.equal(status.store.heldBy, 'primary process')
  // /metrics on the primary: the workers' series combined (counts summed over both).
  const metrics = await (await request(`http://127.0.0.1:${admin}/metrics`)).body.text()
  const ok2xx = [...metrics.matchAll(/^gateway_requests_total\{route="pay"[^}]*class="2xx"\} (\d+)$/gm)].map(m => Number(m[1]))
  t.same(ok2xx, [16], 'gateway_requests_total sums both workers: 16 answered 2xx')

  // An operator's drain reaches every worker (requests on fresh connections spread over both).
  const spread = async (n: number): Promise<number[]> => await Promise.all(Array.from({ length: n }, async (_, i) => {
    const agent = new Agent({ connections: 1 })
    try {
      const res = await request(`http://127.0.0.1:${port}/pay/get-${i}`, { dispatcher: agent })
      await res.body.dump()
      return res.statusCode
    } finally { await agent.close() }
  }))
  const drain = await request(`http://127.0.0.1:${admin}/overrides`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'drain', route: 'pay', upstream: 'pay', reason: 'maintenance', ttl: '10m' }) })
  const drainId = ((await drain.body.json()) as { override: { id: string } }).override.id
  t.equal(drain.statusCode, 201, 'drain set through the primary')
  const payBefore = pay.count
  t.same([...new Set(await spread(12))], [200], 'served while drained')
  t.equal(pay.count, payBefore, 'drained on both workers: the primary upstream got nothing')

  // A worker killed outright is replaced (after 0.5 s: it died young), and traffic goes on.
  const victim = Number(status.workers[0].pid)
  process.kill(victim, 'SIGKILL')
  let pids: number[] = []
  const end = Date.now() + 30_000
  while (pids.length !== 2 || pids.includes(victim)) {
    if (Date.now() > end) throw new Error(`the killed worker was not replaced (workers: ${pids.join(', ')})`)
    await new Promise(resolve => setTimeout(resolve, 100))
    const s = await (await request(`http://127.0.0.1:${admin}/status`)).body.json() as any
    pids = s.workers.map((w: any) => Number(w.pid))
  }
  t.pass(`worker ${victim} was replaced (now ${pids.join(', ')})`)
  const after = await request(`http://127.0.0.1:${port}/pay/x`)
  await after.body.text()
  t.equal(after.statusCode, 200, 'and requests are served')
  // The replay goes out when the new worker reports ready (an IPC message behind it).
  await new Promise(resolve => setTimeout(resolve, 500))
  t.same([...new Set(await spread(12))], [200])
  t.equal(pay.count, payBefore, 'the replacement worker was given the drain: still nothing to the primary upstream')
  const held = await (await request(`http://127.0.0.1:${admin}/overrides`)).body.json() as any
  t.match(held.overrides, [{ id: drainId, kind: 'drain' }], 'the same override, one id')

  proc.kill('SIGTERM')
  t.equal(await exit, 0, 'SIGTERM: both workers drained, exit 0')
})

t.test('--workers 2 on a port another process holds: exit 1 with the reason, no worker left behind, no "gateway bug"', async t => {
  const blocker = createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => { blocker.close() })
  const port = (blocker.address() as AddressInfo).port
  const file = await policyFile(policyYaml(route('pay', '/', [{ name: 'pay', url: 'http://127.0.0.1:9' }])).replace(/port: 0/, `port: ${port}`))
  const proc = spawn(process.execPath, ['--import', 'tsx', 'gateway/cli/main.ts', 'run', '--policy', file, '--workers', '2', '--no-watch'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GATEWAY_LOG_LEVEL: 'warn' } })
  const exit = new Promise<number | null>(resolve => proc.on('exit', code => resolve(code)))
  killWithTest(proc)
  let err = ''
  proc.stderr.on('data', (c: Buffer) => { err += c.toString() })
  let timer: NodeJS.Timeout | undefined
  const code = await Promise.race([exit, new Promise<'hung'>(resolve => { timer = setTimeout(() => resolve('hung'), 60_000) })])
  clearTimeout(timer)
  t.equal(code, 1, 'exit 1 (not hanging on a worker that never gets ready)')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.same(processesWith(file), [], 'no process of it is left running')
  t.match(err, /cannot start: .*EADDRINUSE.*Another process holds the port/, `says why (${err.slice(0, 200)})`)
  t.notMatch(err, /GW_ERR_INTERNAL|gateway bug/, 'not reported as a bug')
})

/** pids whose command line mentions `text` (from /proc: no procps needed). */
function processesWith (text: string): number[] {
  const pids: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try { if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(text)) pids.push(Number(d)) } catch {}
  }
  return pids
}
