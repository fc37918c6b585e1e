/**
 * The access log over real sockets: one JSON line per request with what the
 * gateway did (route, upstream by name, attempts, retry / replay flags,
 * error code, durations, bytes), nothing it must not write (query strings,
 * bodies, upstream addresses), sampling that keeps every error, a file
 * reopened on reload (log rotation), and a destination that cannot be
 * written costing no request.
 */
import t from 'tap'
import { readFile, rename, writeFile, mkdtemp } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { request } from 'undici'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'
import { until } from './helpers/load.js'

interface Line { [k: string]: unknown }

async function lines (file: string): Promise<Line[]> {
  if (!existsSync(file)) return []
  return (await readFile(file, 'utf8')).split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Line)
}

async function send (url: string, opts: Parameters<typeof request>[1] = {}): Promise<{ status: number, requestId: string }> {
  const res = await request(url, opts)
  await res.body.dump()
  return { status: res.statusCode, requestId: String(res.headers['x-request-id']) }
}

t.test('one line per request, with what the gateway did and nothing secret', async t => {
  const p = await upstream(t, { name: 'p' })
  const b = await upstream(t, { name: 'b' })
  const dir = await mkdtemp(join(tmpdir(), 'gw-access-'))
  const file = join(dir, 'logs', 'access.log')
  const yaml = policyYaml(route('pay', '/pay', [{ name: 'p', url: p.url }, { name: 'b', url: b.url, role: 'backup' }],
    '    retry: { attempts: 2, on: [503] }\n    idempotency: {}\n'), `accessLog: { destination: ${JSON.stringify(file)} }\n`)
  const { url } = await startGateway(t, yaml)

  const ok = await send(`${url}/pay/charge?card=4111111111111111&token=s3cret`)
  const missing = await send(`${url}/elsewhere`)
  p.set({ errorRate: 1, errorStatus: 503 })
  const retried = await send(`${url}/pay/retried`)
  p.set({})
  const keyed = { method: 'POST' as const, headers: { 'idempotency-key': 'k-1', 'content-type': 'application/json' }, body: '{"amount":5}' }
  await send(`${url}/pay/keyed`, keyed)
  const replay = await send(`${url}/pay/keyed`, keyed)

  await until(async () => (await lines(file)).length >= 5, 5000, 'five lines in the access log')
  const all = await lines(file)
  t.equal(all.length, 5, 'one line per request')
  const byId = (id: string): Line => all.find(l => l.requestId === id) as Line
  t.match(byId(ok.requestId), { route: 'pay', upstream: 'p', method: 'GET', path: '/pay/charge', status: 200, complete: true, attempts: 1, retried: false, hedged: false, replayed: false, error: null, listener: 'public' })
  t.ok(typeof byId(ok.requestId).durationMs === 'number' && typeof byId(ok.requestId).upstreamMs === 'number', 'durations are numbers')
  const keys = Object.keys(byId(ok.requestId))
  t.same([keys[0], keys[1], keys.at(-1)], ['level', 'time', 'msg'], 'pino\'s line shape: level and time first, msg last')
  t.match(byId(ok.requestId), { level: 30, msg: 'request' })
  t.ok(Math.abs(Number(byId(ok.requestId).time) - Date.now()) < 60_000, 'time in epoch ms')
  t.ok((byId(ok.requestId).bytesOut as number) > 0, 'response bytes counted')
  t.match(byId(missing.requestId), { route: null, upstream: null, status: 404, error: 'GW_ERR_ROUTE_NOT_FOUND', path: '/elsewhere' })
  t.match(byId(retried.requestId), { route: 'pay', upstream: 'b', status: 200, attempts: 2, retried: true })
  t.match(byId(replay.requestId), { status: 200, replayed: true, bytesIn: 12 })
  const text = await readFile(file, 'utf8')
  t.notMatch(text, /s3cret|4111111111111111/, 'no query string')
  t.notMatch(text, /amount/, 'no body')
  t.notMatch(text, new RegExp(`:${new URL(p.url).port}|:${new URL(b.url).port}`), 'no upstream address')
  t.ok(existsSync(dirname(file)), 'the folder was created')
})

t.test('sample: 0 % keeps every error and no success; a reload reopens the file (rotation)', async t => {
  const p = await upstream(t, { name: 'p' })
  const dir = await mkdtemp(join(tmpdir(), 'gw-access-'))
  const file = join(dir, 'access.log')
  const yaml = policyYaml(route('r', '/', [{ name: 'p', url: p.url }]), `accessLog: { destination: ${JSON.stringify(file)}, sample: 0% }\n`)
  const { url, gw, file: policy } = await startGateway(t, yaml)
  for (let i = 0; i < 20; i++) await send(`${url}/fine`)
  p.set({ errorRate: 1, errorStatus: 500 })
  for (let i = 0; i < 3; i++) await send(`${url}/broken`)
  p.set({})
  await until(async () => (await lines(file)).length >= 3, 5000, 'the errors logged')
  await new Promise(resolve => setTimeout(resolve, 200))
  t.same((await lines(file)).map(l => l.status), [500, 500, 500], 'only the errors')

  await rename(file, `${file}.1`)
  await writeFile(policy, yaml.replace('sample: 0%', 'sample: 100%'))
  const r = await gw.reload('signal')
  t.equal(r.ok, true)
  await send(`${url}/after-rotation`)
  await until(async () => (await lines(file)).length >= 1, 5000, 'a new file after the reload')
  t.match((await lines(file))[0], { path: '/after-rotation', status: 200 }, 'the changed sample applies; the new file gets the lines')
  t.equal((await lines(`${file}.1`)).length, 3, 'the rotated file keeps its lines')
})

t.test('a destination that cannot be written costs no request', async t => {
  const p = await upstream(t, { name: 'p' })
  const dir = await mkdtemp(join(tmpdir(), 'gw-access-'))
  await writeFile(join(dir, 'a-file'), 'not a folder')
  const errors: unknown[] = []
  const logger = { info: () => {}, warn: () => {}, debug: () => {}, error: (o: object) => { errors.push(o) } }
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'p', url: p.url }]), `accessLog: { destination: ${JSON.stringify(join(dir, 'a-file', 'access.log'))} }\n`), { logger })
  const answers = await Promise.all(Array.from({ length: 20 }, async () => await send(`${url}/x`)))
  t.same([...new Set(answers.map(a => a.status))], [200], 'every request served')
  await until(() => errors.length > 0, 5000, 'the failure logged')
  t.match(errors[0], { code: /ENOTDIR|ENOENT|EEXIST/ }, 'with its code')
})
