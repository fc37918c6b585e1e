/**
 * Smooth weighted round-robin among primaries; backups idle while any
 * primary is available; weight 0 drains.
 */
import t from 'tap'
import { request } from 'undici'
import { Balancer } from '../gateway/proxy/balancer.js'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'

t.test('balancer: exact smooth spread 5:1:1 (nginx sequence)', async t => {
  const m = (name: string, weight: number) => ({ name, weight, available: true })
  const b = new Balancer([[m('a', 5), m('b', 1), m('c', 1)]])
  const seq = Array.from({ length: 7 }, () => b.pick()?.name).join('')
  t.equal(seq, 'aabacaa', 'smooth, not aaaaabc')
})

t.test('balancer: next level only when the lower one has nothing available', async t => {
  const a = { name: 'a', weight: 1, available: true }
  const backup = { name: 'k', weight: 1, available: true }
  const b = new Balancer([[a], [backup]])
  t.equal(b.pick()?.name, 'a')
  a.available = false
  t.equal(b.pick()?.name, 'k')
  backup.available = false
  t.equal(b.pick(), null)
})

t.test('over the wire: 3:1 weights, backup unused, drained upstream unused', async t => {
  const a = await upstream(t, { name: 'a' })
  const b = await upstream(t, { name: 'b' })
  const drained = await upstream(t, { name: 'drained' })
  const backup = await upstream(t, { name: 'backup' })
  const { url, gw } = await startGateway(t, policyYaml(route('r', '/', [
    { name: 'a', url: a.url, weight: 3 },
    { name: 'b', url: b.url, weight: 1 },
    { name: 'drained', url: drained.url, weight: 0 },
    { name: 'backup', url: backup.url, role: 'backup' }
  ])))
  for (let i = 0; i < 40; i++) {
    const res = await request(`${url}/x`)
    await res.body.text()
  }
  t.equal(a.count, 30)
  t.equal(b.count, 10)
  t.equal(drained.count, 0)
  t.equal(backup.count, 0)
  const status = gw.status() as { routes: Array<{ upstreams: Array<{ name: string, share: number, window: { samples: number } }> }> }
  const ups = status.routes[0]?.upstreams ?? []
  t.same(ups.map(u => [u.name, u.share]), [['a', 0.75], ['b', 0.25], ['drained', 0], ['backup', 0]], 'configured shares in /status')
  t.equal(ups.find(u => u.name === 'a')?.window.samples, 30, 'latency samples recorded per upstream')
})

t.test('backups take over when every primary is drained', async t => {
  const a = await upstream(t, { name: 'a' })
  const backup = await upstream(t, { name: 'backup' })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [
    { name: 'a', url: a.url, weight: 0 },
    { name: 'backup', url: backup.url, role: 'backup' }
  ])))
  const res = await request(`${url}/x`)
  t.equal(res.headers['x-gateway-upstream'], 'backup')
  await res.body.text()
  t.equal(backup.count, 1)
})
