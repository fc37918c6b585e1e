/**
 * Hot reload: valid files swap in, invalid ones are rejected with their
 * issues and the old policy keeps serving; requests in flight finish on the
 * snapshot they started with; no request fails during reloads under load.
 */
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { request, Agent } from 'undici'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'
import { Gateway } from '../gateway/app/gateway.js'

t.test('valid reload swaps; invalid keeps the old policy and reports why', async t => {
  const a = await upstream(t, { name: 'a' })
  const b = await upstream(t, { name: 'b' })
  const { url, file, gw } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: a.url }])))
  t.equal(gw.runtime.generation, 1)

  await writeFile(file, policyYaml(route('r', '/', [{ name: 'b', url: b.url }])))
  const ok = await gw.reload('admin')
  t.equal(ok.ok, true)
  t.equal(ok.changed, true)
  t.equal(gw.runtime.generation, 2)
  const res = await request(`${url}/x`)
  t.equal(res.headers['x-gateway-upstream'], 'b')
  await res.body.text()

  const same = await gw.reload('signal')
  t.equal(same.changed, false, 'unchanged file is not swapped')
  t.equal(gw.runtime.generation, 2)

  const badYaml = policyYaml(route('r', '/', [{ name: 'b', url: 'not-a-url' }]))
  await writeFile(file, badYaml)
  const bad = await gw.reload('admin')
  t.equal(bad.ok, false)
  t.equal(bad.code, 'GW_ERR_POLICY_INVALID')
  const badLine = badYaml.split('\n').findIndex(l => l.includes('not-a-url')) + 1
  t.match(bad.issues?.[0], { path: 'routes[0].upstreams[0].url', line: badLine, column: 14 })
  t.equal(gw.runtime.generation, 2, 'old policy still in place')
  t.equal(gw.lastReload?.ok, false, 'failure visible')
  const still = await request(`${url}/x`)
  t.equal(still.statusCode, 200)
  t.equal(still.headers['x-gateway-upstream'], 'b')
  await still.body.text()

  const badAgain = await gw.reload('file')
  t.equal(badAgain.ok, false, 'the same bad file stays rejected')
})

t.test('a reload that changes listeners is rejected (bound at start-up)', async t => {
  const a = await upstream(t, { name: 'a' })
  const { file, gw } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: a.url }])))
  await writeFile(file, policyYaml(route('r', '/', [{ name: 'a', url: a.url }])).replace('port: 0\nadmin', 'port: 0\n  - name: second\n    host: 127.0.0.1\n    port: 0\nadmin'))
  const r = await gw.reload('admin')
  t.equal(r.ok, false)
  t.equal(r.code, 'GW_ERR_POLICY_STATIC_CHANGED')
  t.equal(gw.runtime.generation, 1)
})

t.test('in-flight requests finish on the snapshot they started with', async t => {
  const slow = await upstream(t, { name: 'a', fault: { latencyMs: 400 } })
  const fresh = await upstream(t, { name: 'b' })
  const { url, file, gw } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: slow.url }])))
  const pending = request(`${url}/x`)
  await new Promise(resolve => setTimeout(resolve, 100))
  await writeFile(file, policyYaml(route('r', '/', [{ name: 'b', url: fresh.url }])))
  t.equal((await gw.reload('admin')).ok, true)
  const res = await pending
  t.equal(res.statusCode, 200, 'old upstream answered even though it left the policy')
  t.equal(res.headers['x-gateway-upstream'], 'a')
  await res.body.text()
  const next = await request(`${url}/x`)
  t.equal(next.headers['x-gateway-upstream'], 'b')
  await next.body.text()
})

t.test('file watcher reloads on change', async t => {
  const a = await upstream(t, { name: 'a' })
  const b = await upstream(t, { name: 'b' })
  const { file } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: a.url }])))
  // A second gateway on the same file, with watching on.
  const gw = await Gateway.start({ policyFile: file, watch: true })
  t.teardown(async () => await gw.close())
  await writeFile(file, policyYaml(route('r', '/', [{ name: 'b', url: b.url }])))
  const end = Date.now() + 5000
  while (gw.runtime.generation === 1 && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(gw.runtime.generation, 2, 'reloaded without being asked')
  t.equal(gw.lastReload?.trigger, 'file')
})

t.test('no request fails while valid and invalid reloads happen under load', async t => {
  const a = await upstream(t, { name: 'a', baseline: { latencyMs: 2 } })
  const b = await upstream(t, { name: 'b', baseline: { latencyMs: 2 } })
  const { url, file, gw } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: a.url }])))
  const agent = new Agent({ connections: 16 })
  t.teardown(async () => await agent.close())
  let stop = false
  let ok = 0
  const failures: string[] = []
  const worker = async (): Promise<void> => {
    while (!stop) {
      try {
        const res = await request(`${url}/load`, { method: 'POST', body: 'x'.repeat(512), dispatcher: agent })
        await res.body.text()
        if (res.statusCode === 200) ok++
        else failures.push(`status ${res.statusCode}`)
      } catch (err) {
        failures.push(String(err))
      }
    }
  }
  const workers = Array.from({ length: 16 }, worker)
  const variants = [
    policyYaml(route('r', '/', [{ name: 'b', url: b.url }])),
    policyYaml(route('r', '/', [{ name: 'a', url: a.url }, { name: 'b', url: b.url }])),
    'routes: [ this is not valid',
    policyYaml(route('r', '/', [{ name: 'a', url: a.url }]))
  ]
  let valid = 0
  let invalid = 0
  for (let i = 0; i < 20; i++) {
    await writeFile(file, variants[i % variants.length] as string)
    const r = await gw.reload('admin')
    if (r.ok) valid++
    else invalid++
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  stop = true
  await Promise.all(workers)
  t.equal(valid, 15)
  t.equal(invalid, 5)
  t.same(failures, [], 'no request failed')
  t.ok(ok > 200, `served ${ok} requests during the reloads`)
  t.ok(a.count > 0 && b.count > 0, 'both policies served traffic')
})
