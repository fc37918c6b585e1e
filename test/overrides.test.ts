/**
 * Guarded overrides over real sockets: each one changes routing as stated
 * (counted at the upstreams), ends on time or when cleared, is an event and
 * an operator action in the incident timeline, is refused with a coded 400
 * when it cannot apply, and needs the admin token when one is set. The CLI
 * front (gateway drain / pin / status / overrides) against a running gateway.
 */
import t from 'tap'
import { request } from 'undici'
import { upstream, startGateway, policyYaml, route, fastShift, type Teardown } from './helpers/harness.js'
import { hits, paced, until } from './helpers/load.js'
import { closedPort } from './helpers/net.js'
import { runCli } from '../gateway/cli/commands.js'

type Json = Record<string, any>

async function pay (t: Teardown, extra = ''): Promise<Awaited<ReturnType<typeof startGateway>> & { p: Awaited<ReturnType<typeof upstream>>, b: Awaited<ReturnType<typeof upstream>> }> {
  const p = await upstream(t, { name: 'p' })
  const b = await upstream(t, { name: 'b' })
  const routes = route('pay', '/pay', [{ name: 'p', url: p.url }, { name: 'b', url: b.url, role: 'backup' }],
    fastShift() + '    breaker: { consecutiveFailures: 2, openFor: 30s }\n') + route('solo', '/solo', [{ name: 's', url: p.url }])
  const started = await startGateway(t, policyYaml(routes, extra))
  return { ...started, p, b }
}

async function post (adminUrl: string, body: object, headers: Record<string, string> = {}): Promise<{ status: number, body: Json, code: string }> {
  const res = await request(`${adminUrl}/overrides`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  return { status: res.statusCode, body: await res.body.json() as Json, code: String(res.headers['x-gateway-error'] ?? '') }
}

const get = async (url: string): Promise<Json> => await (await request(url)).body.json() as Json
const kinds = async (adminUrl: string): Promise<Json[]> => (await get(`${adminUrl}/events`)).events as Json[]
const tally = (u: { count: number }): () => number => { const start = u.count; return () => u.count - start }

t.test('drain: the drained upstream gets nothing until the override expires, on time', async t => {
  const { url, adminUrl, p, b } = await pay(t)
  const set = await post(adminUrl, { kind: 'drain', route: 'pay', upstream: 'p', reason: 'maintenance window', ttl: '1500ms' })
  t.equal(set.status, 201, JSON.stringify(set.body))
  const setAt = Date.now()
  t.match(set.body.override, { id: /^ov-\d+$/, kind: 'drain', route: 'pay', upstream: 'p', reason: 'maintenance window', expiresAt: String })
  const toP = tally(p)
  const toB = tally(b)
  const answers = await hits(`${url}/pay`, 20)
  t.ok(answers.every(a => a.status === 200), 'every request served')
  t.equal(toP(), 0, 'the drained primary received nothing')
  t.equal(toB(), 20, 'the backup took all 20')
  const status = await get(`${adminUrl}/status`)
  t.match(status.overrides, [{ kind: 'drain', upstream: 'p' }], '/status lists it')
  t.match(status.routes[0].upstreams[0], { name: 'p', available: false, held: { drained: true } })

  await until(async () => (await kinds(adminUrl)).some(e => e.kind === 'override.expired'), 5000, 'override.expired')
  const took = Date.now() - setAt
  t.ok(took >= 1400 && took < 3500, `expired after ${took} ms (ttl 1500 ms)`)
  const back = tally(p)
  await hits(`${url}/pay`, 10)
  t.equal(back(), 10, 'after expiry the primary takes the traffic again')
  const events = await kinds(adminUrl)
  t.match(events.find(e => e.kind === 'override.set'), { route: 'pay', upstream: 'p', before: 'serving', after: 'drained', detail: /maintenance window/ })
  t.same((await get(`${adminUrl}/overrides`)).overrides, [], 'nothing held after expiry')
})

t.test('pin: about half to the backup; cleared, it goes back to the controller', async t => {
  const { url, adminUrl, p, b } = await pay(t)
  const set = await post(adminUrl, { kind: 'pin', route: 'pay', share: '50%', reason: 'drill', ttl: '10m' })
  t.equal(set.status, 201)
  t.equal(set.body.override.share, 0.5)
  const toP = tally(p)
  const toB = tally(b)
  await hits(`${url}/pay`, 200)
  t.ok(toB() >= 70 && toB() <= 130, `backup took ${toB()} of 200, primary ${toP()}`)
  t.equal(toP() + toB(), 200)
  t.equal((await get(`${adminUrl}/status`)).routes[0].shift.applied !== undefined, true)

  const res = await request(`${adminUrl}/overrides/${set.body.override.id as string}`, { method: 'DELETE' })
  t.equal(res.statusCode, 200)
  t.match(await res.body.json(), { cleared: { id: set.body.override.id } })
  await new Promise(resolve => setTimeout(resolve, 150)) // one control tick
  const back = tally(b)
  await hits(`${url}/pay`, 20)
  t.equal(back(), 0, 'the controller (idle) sends nothing to the backup again')
  t.ok((await kinds(adminUrl)).some(e => e.kind === 'override.cleared' && e.route === 'pay'), 'override.cleared event')
})

t.test('breaker forced open, then forced closed during an incident: routing follows, the timeline shows both', async t => {
  const { url, adminUrl, p, b } = await pay(t)
  const open = await post(adminUrl, { kind: 'breaker', route: 'pay', upstream: 'p', state: 'open', reason: 'suspect channel', ttl: '10m' })
  t.equal(open.status, 201)
  const toP = tally(p)
  await hits(`${url}/pay`, 10)
  t.equal(toP(), 0, 'forced open: the primary gets nothing')
  const cleared = await request(`${adminUrl}/overrides/${open.body.override.id as string}`, { method: 'DELETE' })
  await cleared.body.dump()

  p.set({ errorRate: 1, errorStatus: 500 })
  await until(async () => {
    await hits(`${url}/pay`, 1)
    return (await get(`${adminUrl}/status`)).routes[0].upstreams[0].breaker === 'open'
  }, 5000, 'the breaker opens')
  await until(async () => (await get(`${adminUrl}/incidents`)).incidents.length === 1, 3000, 'an incident')
  const out = tally(p)
  await hits(`${url}/pay`, 10)
  t.equal(out(), 0, 'breaker open: the primary gets nothing')
  const closed = await post(adminUrl, { kind: 'breaker', route: 'pay', upstream: 'p', state: 'closed', reason: 'channel says it is fine', ttl: '10m' })
  t.equal(closed.status, 201)
  const forced = tally(p)
  const toB = tally(b)
  await hits(`${url}/pay`, 10)
  t.ok(forced() >= 10, `forced closed: the failing primary is tried again (${forced()} attempts, backup ${toB()})`)
  const inc = (await get(`${adminUrl}/incidents`)).incidents[0]
  const full = await get(`${adminUrl}/incidents/${inc.id as string}`)
  t.ok(full.events.some((e: Json) => e.kind === 'override.set' && /forced closed/.test(e.detail)), 'the override is in the incident timeline')
  const md = await (await request(`${adminUrl}/incidents/${inc.id as string}/report`)).body.text()
  t.match(md, /## What operators did\n\n- \+\d+\.\d\d s override\.set: breaker of pay\/p forced closed by an operator.*channel says it is fine/)
})

t.test('pause: the controller does not move while paused, and acts once released', async t => {
  const { url, adminUrl, p, b } = await pay(t)
  const set = await post(adminUrl, { kind: 'pause', route: 'pay', reason: 'we steer by hand', ttl: '10m' })
  t.equal(set.status, 201)
  p.set({ latencyMs: 600 })
  const toB = tally(b)
  await paced(`${url}/pay`, 20, 1500)
  const status = await get(`${adminUrl}/status`)
  t.equal(status.routes[0].shift.applied, 0, 'paused: no shift despite 600 ms against a 300 ms threshold')
  t.equal(toB(), 0, 'the backup got nothing')
  const res = await request(`${adminUrl}/overrides/${set.body.override.id as string}`, { method: 'DELETE' })
  await res.body.dump()
  const load = paced(`${url}/pay`, 20, 3000)
  await until(async () => (await get(`${adminUrl}/status`)).routes[0].shift.applied > 0, 4000, 'the shift once released')
  await load
  t.ok(toB() > 0, `released: the backup takes traffic (${toB()})`)
})

t.test('refused with GW_ERR_ADMIN_OVERRIDE_INVALID (400) when it cannot apply; 404 for an unknown id', async t => {
  const { adminUrl } = await pay(t)
  const cases: Array<[object, RegExp]> = [
    [{ kind: 'drain', route: 'nope', upstream: 'p', reason: 'r', ttl: '1m' }, /no route named "nope"/],
    [{ kind: 'drain', route: 'pay', upstream: 'zz', reason: 'r', ttl: '1m' }, /no upstream named "zz"/],
    [{ kind: 'drain', route: 'pay', reason: 'r', ttl: '1m' }, /needs an upstream/],
    [{ kind: 'pin', route: 'solo', share: 0.5, reason: 'r', ttl: '1m' }, /no backups/],
    [{ kind: 'pin', route: 'pay', share: '150%', reason: 'r', ttl: '1m' }, /share/],
    [{ kind: 'pin', route: 'pay', reason: 'r', ttl: '1m' }, /share/],
    [{ kind: 'pause', route: 'solo', reason: 'r', ttl: '1m' }, /no shift controller/],
    [{ kind: 'breaker', route: 'pay', upstream: 'p', reason: 'r', ttl: '1m' }, /state/],
    [{ kind: 'breaker', route: 'solo', upstream: 's', state: 'open', reason: 'r', ttl: '1m' }, /no breaker/],
    [{ kind: 'drain', route: 'pay', upstream: 'p', ttl: '1m' }, /reason/],
    [{ kind: 'drain', route: 'pay', upstream: 'p', reason: '   ', ttl: '1m' }, /reason/],
    [{ kind: 'drain', route: 'pay', upstream: 'p', reason: 'r', ttl: '25h' }, /24h/],
    [{ kind: 'drain', route: 'pay', upstream: 'p', reason: 'r', ttl: 'soon' }, /ttl/],
    [{ kind: 'drain', route: 'pay', upstream: 'p', reason: 'r', ttl: '1m', extra: 1 }, /extra/],
    [{ kind: 'reboot', route: 'pay', reason: 'r', ttl: '1m' }, /kind/]
  ]
  for (const [body, why] of cases) {
    const r = await post(adminUrl, body)
    t.equal(r.status, 400, JSON.stringify(body))
    t.equal(r.code, 'GW_ERR_ADMIN_OVERRIDE_INVALID')
    t.match(r.body.detail, why, `${JSON.stringify(body)}: ${String(r.body.detail)}`)
  }
  const junk = await request(`${adminUrl}/overrides`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"kind":' })
  t.equal(junk.statusCode, 400, 'malformed JSON is a 400 too')
  await junk.body.dump()
  const missing = await request(`${adminUrl}/overrides/ov-999`, { method: 'DELETE' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.headers['x-gateway-error'], 'GW_ERR_ADMIN_NOT_FOUND')
  await missing.body.dump()
  t.same((await get(`${adminUrl}/overrides`)).overrides, [], 'nothing was set')
})

t.test('with a token: overrides need the Bearer header; the dashboard cookie cannot set one', async t => {
  const token = 'ops-token-4242'
  const a = await upstream(t)
  const yaml = policyYaml(route('r', '/', [{ name: 'a', url: a.url }, { name: 'c', url: a.url, role: 'backup' }])).replace('  port: 0\n\nroutes', '  port: 0\n  tokenEnv: GW_OV_TOKEN\n\nroutes')
  const { adminUrl } = await startGateway(t, yaml, { env: { GW_OV_TOKEN: token } })
  const body = { kind: 'drain', route: 'r', upstream: 'a', reason: 'r', ttl: '1m' }
  const anon = await post(adminUrl, body)
  t.equal(anon.status, 401)
  t.equal(anon.code, 'GW_ERR_ADMIN_UNAUTHORIZED')
  const list = await request(`${adminUrl}/overrides`)
  t.equal(list.statusCode, 401, 'listing needs the token too')
  await list.body.dump()
  const login = await request(`${adminUrl}/dashboard/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${token}` })
  await login.body.dump()
  const cookie = String(login.headers['set-cookie']).split(';')[0] as string
  t.match(cookie, /^gateway_admin=/)
  const viaCookie = await post(adminUrl, body, { cookie })
  t.equal(viaCookie.status, 401, 'a session cookie never authorises a change')
  const ok = await post(adminUrl, body, { authorization: `Bearer ${token}` })
  t.equal(ok.status, 201)
  const seen = await request(`${adminUrl}/overrides`, { headers: { cookie } })
  t.equal(seen.statusCode, 200, 'the signed-in dashboard may read them')
  t.match(await seen.body.json(), { overrides: [{ kind: 'drain', upstream: 'a' }] })
})

t.test('CLI: gateway drain / pin / overrides / status against the running gateway', async t => {
  const p = await upstream(t, { name: 'p' })
  const b = await upstream(t, { name: 'b' })
  const port = await closedPort()
  const yaml = policyYaml(route('pay', '/pay', [{ name: 'p', url: p.url }, { name: 'b', url: b.url, role: 'backup' }], fastShift()))
    .replace('admin:\n  host: 127.0.0.1\n  port: 0\n', `admin:\n  host: 127.0.0.1\n  port: ${port}\n`)
  const { url, file } = await startGateway(t, yaml)
  const cli = async (...args: string[]): Promise<{ code: number | null, out: string, err: string }> => {
    let out = ''
    let err = ''
    const code = await runCli([...args, '--policy', file], { write: (s: string) => { out += s } }, { write: (s: string) => { err += s } })
    return { code, out, err }
  }
  const noReason = await cli('drain', 'pay', 'p', '--ttl', '10m')
  t.equal(noReason.code, 2)
  t.match(noReason.err, /--reason/)
  const drained = await cli('drain', 'pay', 'p', '--reason', 'vendor maintenance', '--ttl', '10m')
  t.equal(drained.code, 0, drained.err)
  t.match(drained.out, /^set ov-\d+ {2}drain {3}pay\/p {2}drained {2}until \S+ {2}"vendor maintenance"\n$/)
  const toP = tally(p)
  await hits(`${url}/pay`, 5)
  t.equal(toP(), 0, 'drained through the CLI')
  const status = await cli('status')
  t.equal(status.code, 0)
  t.match(status.out, /route pay {2}shift idle, backup share 0%/)
  t.match(status.out, /p +primary +share .*OUT, .*held by an operator: drained/)
  const pinned = await cli('pin', 'pay', '30%', '--reason', 'drill', '--ttl', '5m')
  t.equal(pinned.code, 0, pinned.err)
  t.match(pinned.out, /backup share 30%/)
  const listed = await cli('overrides')
  t.equal(listed.out.trim().split('\n').length, 2, listed.out)
  const id = /^(ov-\d+)/.exec(drained.out.slice(4))?.[1] as string
  const cleared = await cli('overrides', 'clear', id)
  t.equal(cleared.code, 0, cleared.err)
  t.match(cleared.out, new RegExp(`^cleared ${id} `))
  const again = await cli('overrides', 'clear', id)
  t.equal(again.code, 1)
  t.match(again.err, /no override/)
  const bad = await cli('pin', 'pay', '2', '--reason', 'x', '--ttl', '1m')
  t.equal(bad.code, 1)
  t.match(bad.err, /400 GW_ERR_ADMIN_OVERRIDE_INVALID/)
})
