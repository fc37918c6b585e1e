/**
 * Fleet mode as it runs in production: three gateway OS processes
 * (`gateway run --policy FILE --no-watch`, each on its own free ports)
 * sharing one real redis-server, in front of the same two payment channels
 * (a primary and a backup). Only real sockets: HTTP to the gateways and to
 * their admin /status, never their internals. The three processes start
 * once, in parallel, and serve the three tests in order (Redis is killed
 * last).
 * - one idempotency key sent to all three at once, then one after another:
 *   the primary sees it once, every client the same answer, one original
 *   and the rest replays; another body under the key is 422;
 * - a latency spike on the primary with load through one process only: all
 *   three show a backup share in /status within 1 s of the first, and all
 *   three return to 0 once the primary heals;
 * - Redis killed mid-load: plain requests never fail, keyed ones get 503
 *   GW_ERR_IDEMPOTENCY_STORE_UNAVAILABLE unforwarded (storeUnavailable:
 *   reject, the default), /status and the log show the store down, and keys
 *   are shared again once Redis is back.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { request } from 'undici'
import { upstream, policyFile, policyYaml, route, fastShift, type Teardown } from './helpers/harness.js'
import { startRedis, type RedisServer } from './helpers/redis.js'
import { steadyLoad, until } from './helpers/load.js'
import { killWithTest } from './helpers/children.js'
import type { FaultUpstream } from '../scripts/lib/fault-upstream.js'

interface Proc {
  readonly url: string
  readonly admin: string
  /** Everything the process wrote to stderr so far (its JSON log lines). */
  readonly log: () => string
}

/** Starts `gateway run` as a child process and waits for its "admin API on" line. */
async function spawnGateway (t: Teardown, file: string): Promise<Proc> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'gateway/cli/main.ts', 'run', '--policy', file, '--no-watch'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GATEWAY_LOG_LEVEL: 'warn' } })
  let out = ''
  let err = ''
  proc.stdout.on('data', (c: Buffer) => { out += c.toString() })
  proc.stderr.on('data', (c: Buffer) => { err += c.toString() })
  const exited = new Promise<void>(resolve => proc.once('exit', () => resolve()))
  const kill = (): void => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') }
  killWithTest(proc) // even if this test process dies or is stopped first
  t.teardown(async () => {
    kill()
    await exited
  })
  await until(() => / admin API on /.test(out) || proc.exitCode !== null, 60_000, 'a gateway process to start')
  const port = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
  const admin = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
  if (port === undefined || admin === undefined) throw new Error(`gateway did not start (exit ${String(proc.exitCode)}): ${out}${err}`)
  return { url: port, admin, log: () => err }
}

/** Redis, the two channels and three gateway processes started in parallel. */
async function fleet (t: Teardown): Promise<{ redis: RedisServer, gws: Proc[], primary: FaultUpstream, backup: FaultUpstream }> {
  const redis = await startRedis(t)
  const primary = await upstream(t, { name: 'p', baseline: { latencyMs: 5 } })
  const backup = await upstream(t, { name: 'b', baseline: { latencyMs: 5 } })
  const store = `store:\n  redis: { url: "${redis.url}", keyPrefix: "p${process.pid}:", commandTimeout: 1s, maxBackoff: 200ms }\n  fleet: { syncInterval: 50ms, staleAfter: 500ms }\n`
  const ups = [{ name: 'p', url: primary.url }, { name: 'b', url: backup.url, role: 'backup' as const }]
  const file = await policyFile(policyYaml(route('pay', '/', ups, `    idempotency: { waitFor: 5s }\n${fastShift()}`), store))
  const gws = await Promise.all([0, 1, 2].map(async () => await spawnGateway(t, file)))
  return { redis, gws, primary, backup }
}

interface Reply { status: number, body: string, replayed: boolean, code: string, retryAfter: string }

async function post (url: string, key: string | null, body = '{"amount":42}'): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (key !== null) headers['idempotency-key'] = key
  const res = await request(`${url}/pay/charge`, { method: 'POST', headers, body })
  const h = res.headers
  return { status: res.statusCode, body: await res.body.text(), replayed: h['idempotency-replayed'] === 'true', code: String(h['x-gateway-error'] ?? ''), retryAfter: String(h['retry-after'] ?? '') }
}

async function status (g: Proc): Promise<any> {
  return await (await request(`${g.admin}/status`)).body.json()
}

/** Polls /status of every process every 25 ms until `done` holds for all; returns when each first did (ms since `since`). */
async function watchStatus (gws: readonly Proc[], done: (s: any) => boolean, ms: number, what: string, since = Date.now()): Promise<number[]> {
  const at: Array<number | undefined> = gws.map(() => undefined)
  const end = Date.now() + ms
  while (at.some(x => x === undefined)) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what} (seen on: ${at.map(x => x !== undefined).join(', ')})`)
    const all = await Promise.all(gws.map(async (g, i) => at[i] === undefined ? await status(g) : null))
    all.forEach((s, i) => { if (s !== null && done(s)) at[i] = Date.now() - since })
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  return at as number[]
}

const { redis, gws, primary, backup } = await fleet(t)

/** How many requests carrying this idempotency key the upstream read. */
const sentWithKey = (u: FaultUpstream, key: string): number => u.received.filter(r => r.headers['idempotency-key'] === key).length

t.test('one key over three processes: the primary sees it once, every client the same answer', async t => {
  primary.resetCounts()
  primary.set({ latencyMs: 300 }) // the first is still in flight when the others arrive
  const concurrent = await Promise.all(gws.flatMap(g => [post(g.url, 'order-1'), post(g.url, 'order-1')]))
  t.equal(primary.count, 1, 'six concurrent duplicates over three processes: one reached the primary')
  t.equal(backup.count, 0, 'and none the backup')
  t.same([...new Set(concurrent.map(a => a.status))], [200], 'all answered 200')
  t.equal(new Set(concurrent.map(a => a.body)).size, 1, 'every client got the same body')
  t.equal(concurrent.filter(a => !a.replayed).length, 1, 'one original, the rest replays')
  primary.set({ latencyMs: 5 })
  for (const [i, g] of gws.entries()) {
    const again = await post(g.url, 'order-1')
    t.equal(again.status, 200, `process ${i}, one after another: 200`)
    t.ok(again.replayed, `process ${i}: replayed`)
    t.equal(again.body, concurrent[0]?.body, `process ${i}: the same body`)
  }
  t.equal(primary.count, 1, 'still once')
  t.equal(sentWithKey(primary, 'order-1'), 1, 'the one request the primary saw carried the key')
  const other = await post(gws[2]!.url, 'order-1', '{"amount":43}')
  t.equal(other.status, 422, 'same key, different body, on another process: 422')
  t.equal(primary.count, 1, 'the mismatch was not forwarded')
})

t.test('a latency spike on the primary: all three processes shift within 1 s of the first, and all restore', async t => {
  // Test 1's slow original is still in the signal window (1 s) of the process that served it.
  await new Promise(resolve => setTimeout(resolve, 1500))
  // Only process 0 carries traffic: the others can learn of the spike only from the fleet.
  const load = steadyLoad(t, `${gws[0]!.url}/pay`)
  await new Promise(resolve => setTimeout(resolve, 600))
  const before = await Promise.all(gws.map(status))
  t.same(before.map(s => s.routes[0].shift.applied), [0, 0, 0], 'no share on the backup before the spike')
  t.same(before.map(s => s.store), before.map(s => ({ kind: 'redis', instance: s.store.instance, up: true })), 'all three on redis, up')
  t.equal(new Set(before.map(s => s.store.instance)).size, 3, 'three distinct instances')

  primary.set({ latencyMs: 3000 })
  const shifted = await watchStatus(gws, s => s.routes[0].shift.applied > 0, 10_000, 'all three to show a backup share')
  const spread = Math.max(...shifted) - Math.min(...shifted)
  t.ok(spread <= 1000, `all three shifted within ${spread} ms of the first (≤ 1 s; at ${shifted.join(' / ')} ms after the spike)`)
  const idle = await status(gws[1]!)
  t.ok(idle.routes[0].shift.fleet.some((p: any) => p.share > 0), 'an idle process shows which peer holds the share up')
  t.ok(idle.routes[0].upstreams.find((u: any) => u.name === 'b').share > 0, 'and routes that share to the backup')

  const healedAt = Date.now()
  primary.set({ latencyMs: 5 })
  const restored = await watchStatus(gws, s => s.routes[0].shift.applied === 0, 20_000, 'all three back on the primary', healedAt)
  t.pass(`all three back to share 0 at ${restored.join(' / ')} ms after the heal`)
  await load.stop()
})

t.test('redis killed mid-load: plain requests never fail, keyed ones get 503 unforwarded, keys are shared again after', async t => {
  t.equal((await post(gws[0]!.url, 'before-1')).status, 200, 'a keyed request before the outage')
  let stop = false
  t.teardown(() => { stop = true })
  const plain: Array<{ at: number, status: number }> = []
  const load = (async () => {
    for (let i = 0; !stop; i++) {
      const at = Date.now()
      plain.push({ at, status: await post(gws[i % gws.length]!.url, null).then(r => r.status, () => 0) })
    }
  })()
  await new Promise(resolve => setTimeout(resolve, 300))

  const logged = gws.map(g => g.log().length)
  const killedAt = Date.now()
  await redis.stop()
  const down = await watchStatus(gws, s => s.store.up === false, 10_000, 'every /status to show the store down', killedAt)
  t.pass(`every process shows store up: false (${down.join(' / ')} ms after the kill)`)
  for (const [i, g] of gws.entries()) {
    const keyed = await post(g.url, `during-${i}`)
    t.equal(keyed.status, 503, `process ${i}: keyed request while redis is down: 503`)
    t.equal(keyed.code, 'GW_ERR_IDEMPOTENCY_STORE_UNAVAILABLE', `process ${i}: store unavailable`)
    t.equal(keyed.retryAfter, '1', `process ${i}: Retry-After: 1`)
  }
  t.equal(gws.reduce((n, _g, i) => n + sentWithKey(primary, `during-${i}`) + sentWithKey(backup, `during-${i}`), 0), 0, 'no keyed request reached an upstream')
  const lost = (log: string): boolean => log.split('\n').some(l => l.includes('"msg":"redis unavailable') && l.includes('"code":"GW_ERR_IDEMPOTENCY_STORE_UNAVAILABLE"'))
  await until(() => gws.every((g, i) => lost(g.log().slice(logged[i]))), 5000, 'every process to log the loss of redis')
  t.pass('every process logged "redis unavailable" (warn, with its code)')
  await new Promise(resolve => setTimeout(resolve, 500))

  const restartedAt = Date.now()
  await redis.start()
  const up = await watchStatus(gws, s => s.store.up === true, 15_000, 'every /status to show the store up again', restartedAt)
  t.pass(`every process shows store up: true again (${up.join(' / ')} ms after the restart)`)
  stop = true
  await load
  const during = plain.filter(p => p.at > killedAt && p.at < restartedAt)
  t.ok(during.length >= 5, `${during.length} plain requests sent during the outage`)
  t.same([...new Set(during.map(p => p.status))], [200], 'all of them succeeded')
  t.same([...new Set(plain.map(p => p.status))], [200], `none of ${plain.length} plain requests failed`)

  const first = await post(gws[0]!.url, 'after-1')
  t.equal(first.status, 200, 'keyed requests work again')
  t.notOk(first.replayed, 'a new key: the original')
  for (const [i, g] of gws.entries()) {
    if (i === 0) continue
    const again = await post(g.url, 'after-1')
    t.ok(again.status === 200 && again.replayed, `process ${i}: replayed from redis (${again.status})`)
    t.equal(again.body, first.body, `process ${i}: the same body`)
  }
  t.equal(sentWithKey(primary, 'after-1') + sentWithKey(backup, 'after-1'), 1, 'after the outage the key reached an upstream once')
})
