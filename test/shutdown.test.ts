/**
 * Graceful shutdown: in-flight requests finish, new connections are refused,
 * and past the drain bound the rest are cut. Also the real CLI process:
 * SIGTERM → exit 0; SIGHUP → reload; a bad policy → exit 1 with the list.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { request } from 'undici'
import { upstream, startGateway, policyYaml, route, policyFile } from './helpers/harness.js'
import { Gateway } from '../gateway/app/gateway.js'

t.test('close() lets in-flight requests finish and refuses new ones', async t => {
  const slow = await upstream(t, { name: 'slow', fault: { latencyMs: 300 } })
  const { url, gw } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'slow', url: slow.url }])))
  const inflight = request(`${url}/x`)
  await new Promise(resolve => setTimeout(resolve, 50))
  const closing = gw.close()
  const res = await inflight
  t.equal(res.statusCode, 200, 'in-flight request completed during drain')
  await res.body.text()
  await closing
  await t.rejects(request(`${url}/x`), 'new connections refused after close')
})

t.test('drain bound cuts requests that take too long', async t => {
  const hang = await upstream(t, { name: 'hang', fault: { hangRate: 1 } })
  const file = await policyFile(policyYaml(route('r', '/', [{ name: 'hang', url: hang.url }]), 'shutdown:\n  drainTimeout: 200ms\n'))
  const gw = await Gateway.start({ policyFile: file, watch: false })
  const port = gw.addresses().listeners[0]?.port
  const pending = request(`http://127.0.0.1:${port}/x`).then(() => 'answered', (err: Error) => err)
  await new Promise(resolve => setTimeout(resolve, 50))
  const started = Date.now()
  await gw.close()
  t.ok(Date.now() - started < 3000, 'close did not wait for the hanging upstream')
  t.type(await pending, Error, 'the hanging request was cut')
})

function runCliProcess (args: string[]): { proc: ReturnType<typeof spawn>, out: () => string, err: () => string, exit: Promise<number | null> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'gateway/cli/main.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GATEWAY_LOG_LEVEL: 'warn' } })
  let out = ''
  let err = ''
  proc.stdout?.on('data', d => { out += d })
  proc.stderr?.on('data', d => { err += d })
  const exit = new Promise<number | null>(resolve => proc.on('exit', code => resolve(code)))
  return { proc, out: () => out, err: () => err, exit }
}

async function until (cond: () => boolean, ms = 15000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

t.test('gateway run: serves, reloads on SIGHUP, exits 0 on SIGTERM', async t => {
  const a = await upstream(t, { name: 'a' })
  const b = await upstream(t, { name: 'b' })
  const file = await policyFile(policyYaml(route('r', '/', [{ name: 'a', url: a.url }])))
  const p = runCliProcess(['run', '--policy', file, '--no-watch'])
  t.teardown(() => { p.proc.kill('SIGKILL') })
  await until(() => /listening on http:\/\/127\.0\.0\.1:(\d+)/.test(p.out()) && /admin API on/.test(p.out()))
  const port = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(p.out())?.[1]
  const first = await request(`http://127.0.0.1:${port}/x`)
  t.equal(first.headers['x-gateway-upstream'], 'a')
  await first.body.text()

  await writeFile(file, policyYaml(route('r', '/', [{ name: 'b', url: b.url }])))
  await new Promise(resolve => setTimeout(resolve, 300))
  const unwatched = await request(`http://127.0.0.1:${port}/x`)
  t.equal(unwatched.headers['x-gateway-upstream'], 'a', '--no-watch: a file change alone does not reload')
  await unwatched.body.text()
  p.proc.kill('SIGHUP')
  let served = ''
  for (let i = 0; i < 100 && served !== 'b'; i++) {
    const res = await request(`http://127.0.0.1:${port}/x`)
    served = String(res.headers['x-gateway-upstream'])
    await res.body.text()
    if (served !== 'b') await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.equal(served, 'b', 'SIGHUP reloaded the policy')

  p.proc.kill('SIGTERM')
  t.equal(await p.exit, 0, 'exit 0 after SIGTERM')
  t.match(p.out(), /stopped/)
})

t.test('gateway run with an invalid policy exits 1 listing the problems', async t => {
  const file = await policyFile('listeners:\n  - port: 0\n    bogus: 1\nroutes: []\n')
  const p = runCliProcess(['run', '--policy', file])
  t.equal(await p.exit, 1)
  t.match(p.err(), `${file}:3:5 listeners[0].bogus: unknown key "bogus"`)
  t.match(p.err(), `${file}:4:9 routes: must have at least 1 entry`)
})
