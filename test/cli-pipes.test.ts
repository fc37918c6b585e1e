/**
 * `gateway run` whose stdout and stderr readers go away (`gateway run | head`,
 * a log shipper that died): the writes that follow fail with EPIPE (log
 * lines, a refused reload's report on stderr, the "draining" line on
 * stdout), and the gateway goes on serving and still drains and exits 0 on
 * SIGTERM.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { request } from 'undici'
import { upstream, policyFile, policyYaml, route } from './helpers/harness.js'
import { until } from './helpers/load.js'
import { killWithTest } from './helpers/children.js'

t.test('stdout and stderr closed by their readers: still serving, SIGTERM exits 0', async t => {
  const pay = await upstream(t, { name: 'pay' })
  // An upstream that refuses connections: its failures are logged (warn), onto the closed stderr.
  const file = await policyFile(policyYaml(
    route('pay', '/pay', [{ name: 'pay', url: pay.url }]) +
    route('gone', '/gone', [{ name: 'gone', url: 'http://127.0.0.1:1' }])
  ))
  const proc = spawn(process.execPath, ['--import', 'tsx', 'gateway/cli/main.ts', 'run', '--policy', file, '--no-watch'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GATEWAY_LOG_LEVEL: 'info' } })
  const exit = new Promise<number | null>(resolve => proc.on('exit', code => resolve(code)))
  killWithTest(proc)
  t.teardown(() => { if (proc.exitCode === null) proc.kill('SIGKILL') })
  let out = ''
  proc.stdout.on('data', (c: Buffer) => { out += c.toString() })
  await until(() => /listening on http:\/\/127\.0\.0\.1:(\d+)/.test(out) || proc.exitCode !== null, 60_000, 'the gateway to start')
  const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1])
  t.ok(port > 0, 'started')
  // The readers go away.
  proc.stdout.destroy()
  proc.stderr.destroy()

  const statuses: number[] = []
  for (let i = 0; i < 20; i++) {
    const path = i % 2 === 0 ? '/pay/x' : '/gone/x'
    const res = await request(`http://127.0.0.1:${port}${path}`)
    await res.body.text()
    statuses.push(res.statusCode)
  }
  t.same([...new Set(statuses.filter((_, i) => i % 2 === 0))], [200], 'the working route answers 200 throughout')
  t.ok(statuses.filter((_, i) => i % 2 === 1).every(s => s === 502 || s === 503), `the refused upstream gets its coded error (${statuses.filter((_, i) => i % 2 === 1).join(',')})`)
  t.equal(proc.exitCode, null, 'still running after writing to closed pipes')
  // A reload that is refused writes its reasons to stderr (not through the logger).
  await writeFile(file, 'version: [unclosed\n')
  proc.kill('SIGHUP')
  await new Promise(resolve => setTimeout(resolve, 500))
  const after = await request(`http://127.0.0.1:${port}/pay/x`)
  await after.body.text()
  t.equal(after.statusCode, 200, 'a refused reload reported onto the closed stderr: still serving the old policy')
  t.equal(proc.exitCode, null, 'and still running')
  proc.kill('SIGTERM')
  t.equal(await exit, 0, 'SIGTERM: drained and exit 0 (its "draining" line went nowhere)')
})
