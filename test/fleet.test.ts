/**
 * Fleet mode on a real redis-server: three gateway instances (separate
 * Gateway objects with their own Redis connections, as three processes
 * would have) in front of the same two payment channels.
 * - one idempotency key sent to all three at once, and then again one
 *   after another: the upstream sees it once, every client the same answer;
 * - a latency spike on the primary: all three shift within 1 s of the
 *   first, and all three restore;
 * - Redis killed mid-load: plain requests never fail, keyed requests get
 *   503 GW_ERR_IDEMPOTENCY_STORE_UNAVAILABLE without being forwarded
 *   (storeUnavailable: reject, the default), and everything resumes when
 *   Redis is back;
 * - junk published on the fleet channel is ignored (never a crash), while a
 *   valid peer report on it still moves the share.
 */
import t from 'tap'
import { request } from 'undici'
import { Redis } from 'ioredis'
import { upstream, startGateway, policyYaml, route, fastShift, type Started } from './helpers/harness.js'
import { startRedis, type RedisServer } from './helpers/redis.js'
import { steadyLoad, until } from './helpers/load.js'

const SHIFT = `    idempotency: { waitFor: 5s }\n${fastShift()}`

async function fleet (t: Parameters<typeof startRedis>[0], redis: RedisServer, n = 3): Promise<{ gws: Started[], primary: Awaited<ReturnType<typeof upstream>>, backup: Awaited<ReturnType<typeof upstream>> }> {
  const primary = await upstream(t, { name: 'p', baseline: { latencyMs: 5 } })
  const backup = await upstream(t, { name: 'b', baseline: { latencyMs: 5 } })
  const store = `store:\n  redis: { url: "${redis.url}", keyPrefix: "t${process.pid}:", commandTimeout: 200ms, maxBackoff: 200ms }\n  fleet: { syncInterval: 50ms, staleAfter: 500ms }\n`
  const yaml = policyYaml(route('pay', '/', [{ name: 'p', url: primary.url }, { name: 'b', url: backup.url, role: 'backup' }], SHIFT), store)
  const gws: Started[] = []
  for (let i = 0; i < n; i++) gws.push(await startGateway(t, yaml, { controlTickMs: 20 }))
  return { gws, primary, backup }
}

async function post (url: string, key: string | null, body = '{"amount":42}'): Promise<{ status: number, body: string, replayed: boolean, code: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (key !== null) headers['idempotency-key'] = key
  const res = await request(`${url}/pay/charge`, { method: 'POST', headers, body })
  return { status: res.statusCode, body: await res.body.text(), replayed: res.headers['idempotency-replayed'] === 'true', code: String(res.headers['x-gateway-error'] ?? '') }
}

t.test('one key over three instances: the upstream sees it once, every client the same answer', async t => {
  const redis = await startRedis(t)
  const { gws, primary } = await fleet(t, redis)
  primary.set({ latencyMs: 300 }) // the first is still in flight when the others arrive
  const concurrent = await Promise.all(gws.flatMap(g => [post(g.url, 'order-1'), post(g.url, 'order-1')]))
  t.equal(primary.count, 1, 'six concurrent duplicates over three instances: one reached the upstream')
  t.ok(concurrent.every(a => a.status === 200), `all answered 200 (${concurrent.map(a => a.status).join(',')})`)
  t.equal(new Set(concurrent.map(a => a.body)).size, 1, 'every client got the same body')
  t.equal(concurrent.filter(a => !a.replayed).length, 1, 'one original, the rest replays')
  primary.set({ latencyMs: 5 })
  for (const g of gws) {
    const again = await post(g.url, 'order-1')
    t.equal(again.status, 200)
    t.ok(again.replayed, 'one after another: replayed')
    t.equal(again.body, concurrent[0]?.body)
  }
  t.equal(primary.count, 1, 'still once')
  const other = await post(gws[2]!.url, 'order-1', '{"amount":43}')
  t.equal(other.status, 422, 'same key, different body, on another instance: mismatch')
})

t.test('a latency spike on the primary: all three instances shift within 1 s of the first, and all restore', async t => {
  const redis = await startRedis(t)
  const { gws, primary } = await fleet(t, redis)
  // Only the first instance carries traffic: the others can only learn of the spike from the fleet.
  const load = steadyLoad(t, `${gws[0]!.url}/pay`)
  await new Promise(resolve => setTimeout(resolve, 600))
  primary.set({ latencyMs: 3000 })
  const shiftedAt: number[] = []
  await until(() => {
    gws.forEach((g, i) => { if (shiftedAt[i] === undefined && (g.gw.runtime.routes[0]?.view.backupShare ?? 0) > 0) shiftedAt[i] = Date.now() })
    return shiftedAt.filter(x => x !== undefined).length === 3
  }, 8000, 'all three shifted')
  const spread = Math.max(...shiftedAt) - Math.min(...shiftedAt)
  t.ok(spread < 1000, `all three moved within ${spread} ms of the first (< 1 s)`)
  const status = await (await request(`${gws[1]!.adminUrl}/status`)).body.json() as any
  t.equal(status.store.kind, 'redis')
  t.ok(status.routes[0].shift.fleet.some((p: any) => p.share > 0), 'an idle instance shows which peer holds the share up')
  primary.set({ latencyMs: 5 })
  await until(() => gws.every(g => g.gw.runtime.routes[0]?.view.backupShare === 0), 15000, 'all three restored')
  t.pass('all three back on the primary')
  await load.stop()
})

t.test('redis killed mid-load: plain requests never fail, keyed ones get 503 unforwarded, all resumes when redis returns', async t => {
  const redis = await startRedis(t)
  const { gws, primary } = await fleet(t, redis, 2)
  const warm = await post(gws[0]!.url, 'before-1')
  t.equal(warm.status, 200)
  let stop = false
  const plain: number[] = []
  const load = (async () => {
    let i = 0
    while (!stop) {
      const g = gws[i++ % gws.length]!
      plain.push((await post(g.url, null)).status)
    }
  })()
  await new Promise(resolve => setTimeout(resolve, 200))
  await redis.stop()
  await new Promise(resolve => setTimeout(resolve, 300))
  const before = primary.count
  const keyed = await post(gws[1]!.url, 'during-1')
  t.equal(keyed.status, 503, 'keyed request while redis is down: 503')
  t.equal(keyed.code, 'GW_ERR_IDEMPOTENCY_STORE_UNAVAILABLE')
  await new Promise(resolve => setTimeout(resolve, 300))
  const replay = await post(gws[0]!.url, 'before-1')
  t.ok(replay.status === 503 || replay.replayed, 'a key stored before the outage is never run again')
  await redis.start()
  const back = async (g: Started, key: string): Promise<boolean> => (await post(g.url, key)).status === 200
  for (const [i, g] of gws.entries()) {
    const deadline = Date.now() + 10_000
    while (!await back(g, `after-${i}`)) {
      if (Date.now() > deadline) throw new Error(`instance ${i} never served keyed requests again`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
  stop = true
  await load
  t.ok(plain.length > 20, `${plain.length} plain requests during the outage`)
  t.same([...new Set(plain)], [200], 'no plain request failed because of redis')
  t.ok(primary.count > before, 'traffic kept flowing')
  const again = await post(gws[0]!.url, 'after-1') // claimed on instance 1
  t.ok(again.replayed, 'after the outage, keys are shared again')
})

t.test('junk on the fleet channel (anyone who can reach Redis can publish): ignored, the gateway keeps serving; a valid peer report still moves it', async t => {
  const redis = await startRedis(t)
  const { gws } = await fleet(t, redis, 1)
  const pub = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 })
  t.teardown(() => { pub.disconnect() })
  await pub.connect()
  const channel = `t${process.pid}:fleet:shares`
  await new Promise(resolve => setTimeout(resolve, 300)) // the gateway's subscriber is up
  for (const junk of ['not json', '{"an":"object"}', '[null]', '[7, "x", []]', '[{"instance":"e","route":"pay","share":5,"phase":"x","primaryMs":1}]',
    JSON.stringify([{ instance: 'e', route: 'pay', share: 1, phase: 'x', primaryMs: 'slow' }]), 'x'.repeat(70_000)]) {
    await pub.publish(channel, junk)
  }
  await new Promise(resolve => setTimeout(resolve, 200))
  const g = gws[0]!
  const res = await request(`${g.url}/pay`)
  await res.body.text()
  t.equal(res.statusCode, 200, 'still serving')
  t.equal(g.gw.runtime.routes[0]?.view.backupShare, 0, 'no junk moved the share')
  const valid = JSON.stringify([{ instance: 'peer-1', route: 'pay', share: 0.5, phase: 'shifted', primaryMs: 3000 }])
  await until(() => { void pub.publish(channel, valid); return (g.gw.runtime.routes[0]?.view.backupShare ?? 0) === 0.5 }, 5000, 'a valid peer report to be merged')
  t.pass('a valid report on the same channel moved the share to 0.5')
})
