/**
 * A request refused before its body is read (edge/unread-body.ts): a small
 * declared body is discarded and the connection kept, so the next request
 * on it is answered — and parsed as a request, not as the refused body. A
 * chunked body, one above 64 KiB, or one held back for a 100 Continue closes
 * the connection after the refusal. Raw sockets, pipelined requests.
 */
import t from 'tap'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'
import { rawExchange } from './helpers/raw.js'

const statuses = (raw: string): number[] => [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map(m => Number(m[1]))
const post = (path: string, headers: string, body: string): string => `POST ${path} HTTP/1.1\r\nHost: x\r\n${headers}\r\n${body}`
const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`

t.test('refused with an unread body: small ones keep the connection, the rest close it', async t => {
  const up = await upstream(t, { name: 'u' })
  const { url } = await startGateway(t, policyYaml(route('limited', '/limited', [{ name: 'u', url: up.url }],
    '    rateLimits:\n      - { name: one, key: route, limit: 1, window: 1m, scope: local }\n')))
  const port = Number(new URL(url).port)
  const body = '{"amount":42}'

  const small = await rawExchange(port, post('/nope', `Content-Length: ${body.length}\r\n`, body) + get('/nope'), 1500)
  t.same(statuses(small), [404, 404], 'a 404 with a 13-byte body, then the next request on the same connection')

  const limited = await rawExchange(port, [1, 2, 3].map(() => post('/limited/pay', `Content-Length: ${body.length}\r\n`, body)).join('') + get('/nope'), 1500)
  t.same(statuses(limited), [200, 429, 429, 404], 'the rate-limited ones too, each answered in order on one connection')
  t.equal(up.count, 1, 'only the allowed one reached the upstream')

  const chunked = await rawExchange(port, post('/nope', 'Transfer-Encoding: chunked\r\n', '5\r\nhello\r\n0\r\n\r\n') + get('/nope'), 1500)
  t.same(statuses(chunked), [404], 'chunked: answered, then closed')

  const big = 70 * 1024
  const large = await rawExchange(port, post('/nope', `Content-Length: ${big}\r\n`, 'x'.repeat(big)) + get('/nope'), 1500)
  t.same(statuses(large), [404], 'above 64 KiB: answered, then closed')

  const started = Date.now()
  const held = await rawExchange(port, post('/nope', `Content-Length: ${get('/nope').length}\r\nExpect: 100-continue\r\n`, '') + get('/nope'), 3000)
  t.same(statuses(held), [404], 'a body held back for 100 Continue: no 100, one answer, and the bytes after it are not parsed as a request')
  t.ok(Date.now() - started < 2500, 'the connection was closed, not left waiting for the body')
})

t.test('an invalid idempotency key is refused before the body is read: a small body keeps the connection, a chunked one closes it', async t => {
  const up = await upstream(t, { name: 'u' })
  const { url } = await startGateway(t, policyYaml(route('pay', '/pay', [{ name: 'u', url: up.url }], '    idempotency: {}\n')))
  const port = Number(new URL(url).port)
  const body = '{"amount":42}'
  const bad = 'Idempotency-Key: two words\r\n'
  const small = await rawExchange(port, post('/pay/x', `${bad}Content-Length: ${body.length}\r\n`, body) + get('/nope'), 1500)
  t.same(statuses(small), [400, 404], 'a 400 for the key, then the next request on the same connection')
  const chunked = await rawExchange(port, post('/pay/x', `${bad}Transfer-Encoding: chunked\r\n`, '5\r\nhello\r\n0\r\n\r\n') + get('/nope'), 1500)
  t.same(statuses(chunked), [400], 'chunked: answered, then closed')
  t.equal(up.count, 0)
})
