/**
 * Dedupe windows (idempotency.keyFrom): "never send it twice" for senders
 * that carry no key. The key is derived from parts of the request; repeats
 * within the window are replayed, concurrent ones wait for the first. Unit
 * tests of the derivation, policy checks, then real sockets against a
 * counting upstream: sequential and concurrent repeats, other phones and
 * templates, the window's end, missing parts, non-JSON and oversized
 * bodies, and two gateway instances sharing a real redis-server.
 */
import t from 'tap'
import { Readable } from 'node:stream'
import { connect } from 'node:http2'
import { request } from 'undici'
import { deriveKey, DERIVED_PREFIX, type RequestFacts } from '../gateway/idempotency/derived-key.js'
import { loadPolicyText } from '../gateway/policy/load.js'
import type { DerivedKeyConfig, KeyPart } from '../gateway/policy/snapshot.js'
import { validKey } from '../gateway/proxy/idempotent.js'
import { upstream, startGateway, policyYaml } from './helpers/harness.js'
import { startRedis } from './helpers/redis.js'
import { rawExchange } from './helpers/raw.js'

interface Reply { status: number, headers: Record<string, string | string[] | undefined>, body: string }

async function call (url: string, init: { method?: 'GET' | 'POST', body?: string, headers?: Record<string, string> } = {}): Promise<Reply> {
  const res = await request(url, { method: init.method ?? 'POST', body: init.body, headers: { 'content-type': 'application/json', ...init.headers } })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

const sms = (phone: string, template: string, extra: object = {}): string => JSON.stringify({ phone, template, ...extra })
const replayed = (r: Reply): boolean => r.headers['idempotency-replayed'] === 'true'
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

const cfg = (parts: KeyPart[], onMissing: 'forward' | 'reject' = 'forward'): DerivedKeyConfig =>
  ({ parts, needsBody: parts.some(p => p.from === 'body'), onMissing, methods: new Set(['POST']) })
const facts = (body: string | null, over: Partial<RequestFacts> = {}): RequestFacts =>
  ({ method: 'POST', target: '/sms/send', header: () => [], body: body === null ? null : Buffer.from(body), ...over })
const keyOf = (c: DerivedKeyConfig, f: RequestFacts): string => {
  const d = deriveKey(c, f)
  if (!('key' in d)) throw new Error(`expected a key, got: ${d.missing}`)
  return d.key
}
const missingOf = (c: DerivedKeyConfig, f: RequestFacts): string => {
  const d = deriveKey(c, f)
  if ('key' in d) throw new Error('expected no key')
  return d.missing
}

const PHONE_TEMPLATE = cfg([
  { from: 'body', pointer: '/phone', tokens: ['phone'], normalize: ['digits'] },
  { from: 'body', pointer: '/template', tokens: ['template'], normalize: ['trim', 'lowercase'] }
])

t.test('deriving a key: same parts the same key, other fields ignored, normalised, unambiguous', async t => {
  const a = keyOf(PHONE_TEMPLATE, facts(sms('+1 (555) 010-9999', 'Welcome')))
  t.match(a, /^kf [0-9a-f]{64}$/, 'a prefixed sha256')
  t.equal(DERIVED_PREFIX, 'kf ')
  t.notOk(validKey(a), 'no client key can name a derived window: the prefix holds a space, which a client key may not')
  t.equal(keyOf(PHONE_TEMPLATE, facts(sms('15550109999', '  WELCOME ', { text: 'other words', sentAt: 2 }))), a, 'digits, trim and lowercase make these one message; other fields do not count')
  t.not(keyOf(PHONE_TEMPLATE, facts(sms('15550109998', 'welcome'))), a, 'another phone')
  t.not(keyOf(PHONE_TEMPLATE, facts(sms('15550109999', 'reminder'))), a, 'another template')
  const two = cfg([{ from: 'header', name: 'x-a', normalize: [] }, { from: 'header', name: 'x-b', normalize: [] }])
  const hdr = (va: string, vb: string): RequestFacts => facts(null, { header: n => n === 'x-a' ? [va] : n === 'x-b' ? [vb] : [] })
  t.not(keyOf(two, hdr('a|b', 'c')), keyOf(two, hdr('a', 'b|c')), 'part boundaries cannot be forged by a value holding a separator')
  t.equal(keyOf(cfg([{ from: 'body', pointer: '/n', tokens: ['n'], normalize: [] }]), facts('{"n":42}')),
    keyOf(cfg([{ from: 'body', pointer: '/n', tokens: ['n'], normalize: [] }]), facts('{"n":"42"}')), 'a number is used as written')
  const obj = cfg([{ from: 'body', pointer: '/to', tokens: ['to'], normalize: [] }])
  t.equal(keyOf(obj, facts('{"to":{"b":1,"a":[1,2]}}')), keyOf(obj, facts('{"to":{"a":[1,2],"b":1}}')), 'objects as canonical JSON: key order does not matter')
  t.not(keyOf(obj, facts('{"to":{"a":[1,2]}}')), keyOf(obj, facts('{"to":{"a":[2,1]}}')), 'array order does')
})

t.test('deriving a key: JSON Pointer, headers, query, method and path', async t => {
  const nested = cfg([{ from: 'body', pointer: '/msg/to~1from/0', tokens: ['msg', 'to/from', '0'], normalize: [] }])
  const k = keyOf(nested, facts('{"msg":{"to/from":["+4912345","x"]}}'))
  t.equal(keyOf(nested, facts('{"msg":{"to/from":["+4912345","y"]}}')), k, '~1 is a slash, 0 an array index')
  t.equal(keyOf(nested, facts('{"msg":{"to/from":{"0":"+4912345"}}}')), k, 'on an object, "0" is a member name')
  t.equal(missingOf(nested, facts('{"msg":{"to/from":[]}}')), 'body field /msg/to~1from/0 is missing')
  t.equal(missingOf(cfg([{ from: 'body', pointer: '/a/01', tokens: ['a', '01'], normalize: [] }]), facts('{"a":["x","y"]}')), 'body field /a/01 is missing', 'a leading zero is no array index')
  const byHeader = cfg([{ from: 'header', name: 'x-phone', normalize: ['digits'] }, { from: 'query', name: 'tpl', normalize: [] }])
  const withHeader = (phone: string | null, target: string): RequestFacts => facts(null, { target, header: n => n === 'x-phone' && phone !== null ? [phone] : [] })
  t.equal(keyOf(byHeader, withHeader('+49 123', '/sms?tpl=w%20x&x=1')), keyOf(byHeader, withHeader('49-123', '/sms?x=2&tpl=w+x')), 'header digits, query decoded')
  t.equal(missingOf(byHeader, withHeader(null, '/sms?tpl=a')), 'header x-phone is missing')
  t.equal(missingOf(byHeader, withHeader('none', '/sms?tpl=a')), 'header x-phone is empty', 'no digits at all is no phone: never one key for every bad number')
  t.equal(missingOf(byHeader, withHeader('123', '/sms')), 'query parameter tpl is missing')
  t.equal(missingOf(byHeader, withHeader('123', '/sms?tpl=a&tpl=b')), 'query parameter tpl is given 2 times', 'a repeated parameter is ambiguous: the upstream may take the other one')
  t.equal(missingOf(byHeader, facts(null, { target: '/sms?tpl=a', header: n => n === 'x-phone' ? ['1', '2'] : [] })), 'header x-phone is given 2 times')
  const mp = cfg([{ from: 'method' }, { from: 'path' }])
  t.equal(keyOf(mp, facts(null, { target: '/a?x=1' })), keyOf(mp, facts(null, { target: '/a?x=2' })), 'path leaves the query out')
  t.not(keyOf(mp, facts(null, { target: '/a' })), keyOf(mp, facts(null, { target: '/b' })))
  t.not(keyOf(mp, facts(null, { method: 'PATCH' })), keyOf(mp, facts(null)))
})

t.test('deriving a key: no body, not JSON, null and missing fields', async t => {
  t.equal(missingOf(PHONE_TEMPLATE, facts(null)), 'the request has no body to read the key from')
  t.equal(missingOf(PHONE_TEMPLATE, facts('')), 'the request has no body to read the key from')
  t.equal(missingOf(PHONE_TEMPLATE, facts('phone=1&template=a')), 'the body is not JSON (UTF-8)')
  t.equal(missingOf(PHONE_TEMPLATE, facts('{"phone":null,"template":"a"}')), 'body field /phone is missing')
  t.equal(missingOf(PHONE_TEMPLATE, facts('{"phone":"1"}')), 'body field /template is missing')
  t.equal(missingOf(PHONE_TEMPLATE, facts('[1,2]')), 'body field /phone is missing')
  t.equal(missingOf(PHONE_TEMPLATE, facts('"just a string"')), 'body field /phone is missing')
  t.equal(missingOf(PHONE_TEMPLATE, facts('{"phone":"1","template":"   "}')), 'body field /template is empty')
  const deep = 100_000
  t.equal(missingOf(PHONE_TEMPLATE, facts(`{"phone":${'['.repeat(deep)}${']'.repeat(deep)},"template":"a"}`)), 'body field /phone is nested more than 32 levels deep',
    'a hostile, deeply nested field is refused as a part instead of exhausting the stack')
  const ok = '['.repeat(30) + '"1"' + ']'.repeat(30)
  t.match(keyOf(PHONE_TEMPLATE, facts(`{"phone":${ok},"template":"a"}`)), /^kf /, '30 levels are fine')
})

const POLICY_HEAD = 'version: t\nlisteners: [{ name: public, port: 8080 }]\nroutes:\n  - name: sms\n    match: { pathPrefix: /sms }\n    upstreams: [{ name: a, url: "http://127.0.0.1:9" }]\n'

t.test('policy: keyFrom compiles; mistakes are coded issues at their lines', async t => {
  const ok = loadPolicyText('p.yaml', `${POLICY_HEAD}    idempotency:\n      ttl: 30m\n      keyMissing: reject\n      keyMethods: [POST, PUT]\n      keyFrom:\n        - method\n        - { header: X-Phone, normalize: [digits] }\n        - { query: tpl }\n        - { body: /msg/to~1from, normalize: [trim, lowercase] }\n`)
  if (!ok.ok) throw new Error(JSON.stringify(ok.issues))
  const idem = ok.snapshot.routes[0]?.idempotency
  t.equal(idem?.ttlMs, 30 * 60_000)
  t.same(idem?.keyFrom?.parts, [
    { from: 'method' },
    { from: 'header', name: 'x-phone', normalize: ['digits'] },
    { from: 'query', name: 'tpl', normalize: [] },
    { from: 'body', pointer: '/msg/to~1from', tokens: ['msg', 'to/from'], normalize: ['trim', 'lowercase'] }
  ])
  t.equal(idem?.keyFrom?.needsBody, true)
  t.equal(idem?.keyFrom?.onMissing, 'reject')
  t.same([...idem?.keyFrom?.methods ?? []], ['POST', 'PUT'])
  const dflt = loadPolicyText('p.yaml', `${POLICY_HEAD}    idempotency: { keyFrom: [{ header: X-Phone }] }\n`)
  if (!dflt.ok) throw new Error(JSON.stringify(dflt.issues))
  t.equal(dflt.snapshot.routes[0]?.idempotency?.keyFrom?.onMissing, 'forward', 'forward by default')
  t.same([...dflt.snapshot.routes[0]?.idempotency?.keyFrom?.methods ?? []], ['POST', 'PATCH'], 'POST and PATCH by default')
  t.equal(dflt.snapshot.routes[0]?.idempotency?.keyFrom?.needsBody, false)
  const plain = loadPolicyText('p.yaml', `${POLICY_HEAD}    idempotency: {}\n`)
  t.equal(plain.ok && plain.snapshot.routes[0]?.idempotency?.keyFrom, null, 'no keyFrom: client keys')

  const bad = async (block: string, path: RegExp, message: RegExp): Promise<void> => {
    const r = loadPolicyText('p.yaml', `${POLICY_HEAD}    idempotency:\n${block}`)
    t.equal(r.ok, false, block)
    if (r.ok) return
    t.ok(r.issues.some(i => path.test(i.path) && message.test(i.message) && i.line > 6), `${block.trim()} → ${JSON.stringify(r.issues.map(i => `${i.path}: ${i.message}`))}`)
  }
  await bad('      keyFrom: [{ body: phone }]\n', /keyFrom\[0\]\.body$/, /"phone" is not valid \(write a JSON Pointer starting with \//)
  await bad('      keyFrom: [{ body: "/a~2" }]\n', /keyFrom\[0\]\.body$/, /JSON Pointer/)
  await bad('      keyFrom: [{ header: X-Phone, normalize: [upper] }]\n', /keyFrom\[0\]\.normalize\[0\]$/, /"upper" is not one of "trim", "lowercase", "digits"/)
  await bad('      keyFrom: [{ header: X-Phone, query: p }]\n', /keyFrom\[0\]$/, /split header and query into parts of their own/)
  await bad('      keyFrom: [{ normalize: [trim] }]\n', /keyFrom\[0\]$/, /needs where to read its value/)
  await bad('      keyFrom: [{ bdy: /phone }]\n', /keyFrom\[0\]\.bdy$/, /Did you mean "body"/)
  await bad('      keyFrom: [phone]\n', /keyFrom\[0\]$/, /"phone" is not one of "method", "path"/)
  await bad('      keyFrom: []\n', /keyFrom$/, /at least 1/)
  // Bug: with two values failing one anyOf, each one's errors were taken for the other's and every message was pruned away: refused with 0 issues.
  const two = loadPolicyText('p.yaml', `${POLICY_HEAD}    idempotency:\n      keyFrom: [phone, { body: phone }]\n    retry: { on: [bogus, 999] }\n`)
  t.equal(two.ok, false)
  const paths = two.ok ? [] : two.issues.map(i => i.path)
  for (const p of ['routes[0].idempotency.keyFrom[0]', 'routes[0].idempotency.keyFrom[1].body', 'routes[0].retry.on[0]', 'routes[0].retry.on[1]']) t.ok(paths.includes(p), `two bad items in one list: ${p} is reported`)
  const second = loadPolicyText('p.yaml', `${POLICY_HEAD}    idempotency: { keyFrom: [phone] }\n  - name: mail\n    match: { pathPrefix: /mail }\n    upstreams: [{ name: a, url: "http://127.0.0.1:9" }]\n    idempotency: { keyFrom: [{ body: phone }] }\n`)
  t.same(second.ok ? [] : second.issues.map(i => i.path).filter((p, i, all) => all.indexOf(p) === i), ['routes[0].idempotency.keyFrom[0]', 'routes[1].idempotency.keyFrom[0].body'], 'the same anyOf failing in two routes: both reported')
  for (const block of ['      keyFrom: [{ body: phone }]\n', '      keyFrom: [{ header: X-Phone, normalize: [upper] }]\n']) {
    const r = loadPolicyText('p.yaml', `${POLICY_HEAD}    idempotency:\n${block}`)
    t.equal(r.ok ? 0 : r.issues.length, 1, `one message for one mistake (${block.trim()}): the other shapes of a part are not listed`)
  }
  await bad('      keyMissing: reject\n', /keyMissing/, /only/)
  await bad('      keyFrom: [path]\n      generate: true\n', /generate/, /never repeats/)
  await bad('      keyFrom: [path]\n      upstreamDedupes: true\n', /upstreamDedupes/, /cannot dedupe/)
  await bad('      keyFrom: [path]\n      keyMissing: drop\n', /keyMissing/, /./)
})

const ROUTE = (up: string, idem: string, extra = ''): string => `  - name: sms
    match: { pathPrefix: /sms }
    upstreams:
      - { name: a, url: "${up}" }
${extra}    idempotency:
${idem}`
const SMS_IDEM = `      ttl: 1500ms
      waitFor: 5s
      maxBodySize: 1kb
      keyFrom:
        - { body: /phone, normalize: [digits] }
        - { body: /template, normalize: [trim, lowercase] }
`

t.test('one instance: 50 sequential and 50 concurrent sends of one (phone, template) reach the upstream once each window', async t => {
  const a = await upstream(t, { name: 'a', baseline: { latencyMs: 100 } })
  const { url, gw } = await startGateway(t, policyYaml(ROUTE(a.url, SMS_IDEM)))
  const send = `${url}/sms/send`

  const seq: Reply[] = []
  for (let i = 0; i < 50; i++) seq.push(await call(send, { body: sms('+49 170 1234567', 'otp', { attempt: i }), headers: { 'idempotency-key': `fresh-${i}` } }))
  t.equal(a.count, 1, '50 sequential sends, with a fresh client key each: the upstream got one')
  t.same(new Set(seq.map(r => r.status)), new Set([200]))
  t.equal(seq.filter(replayed).length, 49, '49 replays, marked')
  t.equal(new Set(seq.map(r => r.body)).size, 1, 'every sender got the first answer')
  t.equal(a.received[0]?.headers['idempotency-key'], 'fresh-0', 'the client\'s own key header is forwarded untouched')

  const other = await call(send, { body: sms('+49 170 1234568', 'otp') })
  const otherTemplate = await call(send, { body: sms('+49 170 1234567', 'welcome') })
  t.equal(a.count, 3, 'another phone and another template each went through')
  t.notOk(replayed(other) || replayed(otherTemplate))
  const formatted = await call(send, { body: sms('4917 01234567', ' OTP ') })
  t.ok(replayed(formatted), 'the same phone written differently is the same message')
  t.equal(a.count, 3)
  const get = await call(`${send}?phone=1`, { method: 'GET' })
  const get2 = await call(`${send}?phone=1`, { method: 'GET' })
  t.notOk(replayed(get) || replayed(get2), 'GET is not in keyMethods: passes undeduped')
  t.equal(a.count, 5)

  const conc = await Promise.all(Array.from({ length: 50 }, async (_, i) => await call(send, { body: sms('+1 555 0100', 'promo', { i }) })))
  t.equal(a.count, 6, '50 concurrent sends: the upstream got one')
  t.equal(conc.filter(r => r.status === 200).length, 50)
  t.equal(conc.filter(replayed).length, 49)
  const d = (gw.status() as any).routes[0].delivery
  t.ok(d.waited >= 1, `concurrent repeats waited for the first (${d.waited})`)
  t.equal(d.replays, 49 + 1 + 49)

  await sleep(1700)
  const after = await call(send, { body: sms('+49 170 1234567', 'otp') })
  t.notOk(replayed(after), 'after the window the same pair goes through again')
  t.equal(a.count, 7)
  const inWindow = await call(send, { body: sms('+49 170 1234567', 'otp') })
  t.ok(replayed(inWindow), 'and opens a new window')
  t.equal(a.count, 7)
})

t.test('missing parts, non-JSON and oversized bodies: forwarded undeduped (default) or refused, never a crash or a hang', async t => {
  const a = await upstream(t, { name: 'a' })
  const b = await upstream(t, { name: 'b' })
  const routes = ROUTE(a.url, SMS_IDEM) + ROUTE(b.url, `${SMS_IDEM}      keyMissing: reject\n`).replace('name: sms', 'name: sms-strict').replace('pathPrefix: /sms', 'pathPrefix: /strict')
  const { url, gw, adminUrl } = await startGateway(t, policyYaml(routes))
  const cases: Array<[string, string | undefined]> = [
    ['no phone', JSON.stringify({ template: 'otp' })],
    ['phone without digits', sms('unknown', 'otp')],
    ['not JSON', 'phone=1&template=otp'],
    ['no body', undefined],
    ['a phone nested 400 levels deep', `{"phone":${'['.repeat(400)}${']'.repeat(400)},"template":"otp"}`]
  ]
  for (const [what, body] of cases) {
    const r1 = await call(`${url}/sms/send`, { body })
    const r2 = await call(`${url}/sms/send`, { body })
    t.equal(r1.status, 200, `${what}: forwarded`)
    t.notOk(replayed(r2), `${what}: the repeat is forwarded too (no key, no dedupe)`)
  }
  t.equal(a.count, 10, 'keyMissing: forward sent all 10 undeduped')
  for (const [what, body] of cases) {
    const r = await call(`${url}/strict/send`, { body })
    t.equal(r.status, 400, `${what}: refused`)
    const p = JSON.parse(r.body)
    t.equal(p.code, 'GW_ERR_IDEMPOTENCY_KEY_PARTS_MISSING')
    t.match(p.detail, /^(the body is not JSON \(UTF-8\)|the request has no body to read the key from|body field \/phone is (missing|empty|nested more than 32 levels deep)); the request was not sent upstream$/)
    t.notMatch(p.detail, /unknown|otp/, 'the detail names the part, never its value')
  }
  t.equal(b.count, 0, 'keyMissing: reject sent none')

  const big = sms('+1 555 0100', 'otp', { pad: 'x'.repeat(2000) })
  const tooBig = await call(`${url}/sms/send`, { body: big })
  t.equal(tooBig.status, 413)
  t.equal(JSON.parse(tooBig.body).code, 'GW_ERR_BODY_TOO_LARGE')
  t.match(JSON.parse(tooBig.body).detail, /keyFrom/)
  const chunked = await request(`${url}/sms/send`, { method: 'POST', body: Readable.from([Buffer.from(big.slice(0, 1000)), Buffer.from(big.slice(1000))]) })
  t.equal(chunked.statusCode, 413, 'a chunked body over the limit too')
  await chunked.body.dump()
  t.equal(a.count, 10, 'oversized bodies were not sent')
  const fine = await call(`${url}/sms/send`, { body: sms('+1 555 0100', 'otp') })
  t.equal(fine.status, 200, 'the route serves on')
  const d = (gw.status() as any).routes
  t.equal(d[0].delivery.keyMissing, 10)
  t.equal(d[1].delivery.keyMissing, 5)
  const metrics = await (await request(`${adminUrl}/metrics`)).body.text()
  t.match(metrics, /gateway_idempotency_total\{route="sms",result="key_missing"\} 10/)
  t.match(metrics, /gateway_idempotency_total\{route="sms",result="replayed"\} 0/)
})

t.test('two instances on one real redis-server: sequential and concurrent repeats over both reach the upstream once', async t => {
  const redis = await startRedis(t)
  const a = await upstream(t, { name: 'a', baseline: { latencyMs: 150 } })
  const store = `store:\n  redis: { url: "${redis.url}", keyPrefix: "dw${process.pid}:", commandTimeout: 1s, maxBackoff: 200ms }\n`
  const yaml = policyYaml(ROUTE(a.url, SMS_IDEM.replace('ttl: 1500ms', 'ttl: 3s')), store)
  const one = await startGateway(t, yaml)
  const two = await startGateway(t, yaml)
  const gws = [one, two]

  const seq: Reply[] = []
  for (let i = 0; i < 50; i++) seq.push(await call(`${gws[i % 2]?.url as string}/sms/send`, { body: sms('+44 7700 900123', 'otp', { i }) }))
  t.equal(a.count, 1, '50 sequential sends alternating between two instances: the upstream got one')
  t.equal(seq.filter(replayed).length, 49)

  const conc = await Promise.all(Array.from({ length: 50 }, async (_, i) => await call(`${gws[i % 2]?.url as string}/sms/send`, { body: sms('+44 7700 900124', 'otp', { i }) })))
  t.equal(a.count, 2, '50 concurrent sends over both instances: the upstream got one')
  t.equal(conc.filter(r => r.status === 200).length, 50, 'every sender got the answer')
  t.equal(conc.filter(replayed).length, 49)
  t.equal(new Set(conc.map(r => r.body)).size, 1)

  const other = await call(`${two.url}/sms/send`, { body: sms('+44 7700 900125', 'otp') })
  t.notOk(replayed(other), 'another phone goes through')
  t.equal(a.count, 3)
  const replays = gws.reduce((n, g) => n + Number((g.gw.status() as any).routes[0].delivery.replays), 0)
  t.equal(replays, 98, 'replays counted per route on each instance, 98 in all')
})

t.test('a provider that throttles (429) does not close the window: the key is released and the retry goes out', async t => {
  const a = await upstream(t, { name: 'a', fault: { errorRate: 1, errorStatus: 429 } })
  const { url, gw } = await startGateway(t, policyYaml(ROUTE(a.url, SMS_IDEM)))
  const first = await call(`${url}/sms/send`, { body: sms('+1 555 0100', 'otp') })
  t.equal(first.status, 429, 'the throttled answer reaches the sender')
  const again = await call(`${url}/sms/send`, { body: sms('+1 555 0100', 'otp') })
  t.equal(again.status, 429)
  t.notOk(replayed(again), 'not a replay: the 429 was not stored')
  t.equal(a.count, 2)
  a.set({})
  const sent = await call(`${url}/sms/send`, { body: sms('+1 555 0100', 'otp') })
  t.equal(sent.status, 200, 'once the provider takes it, the message goes out')
  const repeat = await call(`${url}/sms/send`, { body: sms('+1 555 0100', 'otp') })
  t.ok(replayed(repeat), 'and from then on the window holds')
  t.equal(a.count, 3)
  t.equal((gw.status() as any).routes[0].delivery.replays, 1)
})

t.test('over HTTP/2 (h2c): the same window, the same replays', async t => {
  const a = await upstream(t, { name: 'a', baseline: { latencyMs: 50 } })
  const { url } = await startGateway(t, policyYaml(ROUTE(a.url, SMS_IDEM)).replace('    port: 0\nadmin:', '    port: 0\n    http2: true\nadmin:'))
  const session = connect(url)
  t.teardown(() => session.close())
  const send = async (body: string): Promise<{ status: number, replayed: boolean }> => await new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/sms/send', 'content-type': 'application/json' })
    let status = 0
    let replay = false
    stream.on('response', h => { status = Number(h[':status']); replay = h['idempotency-replayed'] === 'true' })
    stream.resume()
    stream.on('end', () => { resolve({ status, replayed: replay }) })
    stream.on('error', reject)
    stream.end(body)
  })
  const answers = await Promise.all(Array.from({ length: 20 }, async (_, i) => await send(sms('+1 555 0199', 'otp', { i }))))
  t.equal(a.count, 1, '20 concurrent streams of one message: sent once')
  t.equal(answers.filter(r => r.status === 200).length, 20)
  t.equal(answers.filter(r => r.replayed).length, 19)
})

t.test('keyMissing: reject with header parts only refuses before reading the body (no 100 Continue, small bodies keep the connection)', async t => {
  const a = await upstream(t, { name: 'a' })
  const { url, gw } = await startGateway(t, policyYaml(ROUTE(a.url, '      keyFrom: [{ header: X-Phone, normalize: [digits] }]\n      keyMissing: reject\n')))
  const port = Number(new URL(url).port)
  const statuses = (raw: string): number[] => [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map(m => Number(m[1]))
  const body = sms('1', 'x')
  const small = await rawExchange(port, `POST /sms/send HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /nope HTTP/1.1\r\nHost: x\r\n\r\n`, 1500)
  t.same(statuses(small), [400, 404], 'refused, then the next request on the same connection')
  const started = Date.now()
  const held = await rawExchange(port, `POST /sms/send HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n`, 3000)
  t.same(statuses(held), [400], 'no 100 Continue: refused at once, nothing of the 5 MB read')
  t.ok(Date.now() - started < 2500, 'and the connection closed')
  const keyed = await rawExchange(port, `POST /sms/send HTTP/1.1\r\nHost: x\r\nX-Phone: +1 555 0100\r\nContent-Length: ${body.length}\r\n\r\n${body}POST /sms/send HTTP/1.1\r\nHost: x\r\nX-Phone: 15550100\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 1500)
  t.same(statuses(keyed), [200, 200], 'with the header: sent, then replayed')
  t.match(keyed, /idempotency-replayed: true/)
  t.equal(a.count, 1)
  t.equal((gw.status() as any).routes[0].delivery.keyMissing, 2)
})
