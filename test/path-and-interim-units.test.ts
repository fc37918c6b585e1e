/**
 * Unit tests of the two pure edge helpers: path normalization (every
 * listener choice) and the interim-response scanner, plus a real socket
 * whose upstream splits its 100 Continue over several packets.
 */
import t from 'tap'
import { createServer } from 'node:net'
import { request } from 'undici'
import { normalizeTarget } from '../gateway/edge/path.js'
import { interimLength } from '../gateway/proxy/interim.js'
import { startGateway, policyYaml, route } from './helpers/harness.js'

const DEF = { slashes: 'merge', escapedSlashes: 'reject' } as const
const err = (x: string | { error: string }): string => typeof x === 'string' ? `ok:${x}` : 'error'

t.test('dot-segments (RFC 3986 §5.2.4) with the default listener choices', async t => {
  const cases: Array<[string, string]> = [
    ['/a/b/c/./../../g', '/a/g'],
    ['/mid/content=5/../6', '/mid/6'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/a/%2E%2e/b', '/b'],
    ['/a/.%2e/b', '/b'],
    ['/a/...', '/a/...'],
    ['/a/..b/c', '/a/..b/c'],
    ['/.well-known/x', '/.well-known/x'],
    ['/a//b//', '/a/b/'],
    ['/', '/'],
    ['/a?x=/../../y', '/a?x=/../../y'],
    ['/a/%41%2e', '/a/%41%2e']
  ]
  for (const [input, want] of cases) t.equal(normalizeTarget(input, DEF), want, input)
  const same = '/orders/42?expand=items'
  t.equal(normalizeTarget(same, DEF), same, 'a clean path is returned as is')
  for (const bad of ['/..', '/../a', '/a/../..', '/%2e%2e', '/a/..;/b', '/.;x/a', '/a%2Fb', '/a%5cb', '/a\\b', '/a%', '/a%g0', '/a#b']) {
    t.equal(err(normalizeTarget(bad, DEF)), 'error', `${bad} refused`)
  }
})

t.test('slashes and escapedSlashes choices', async t => {
  t.equal(normalizeTarget('/a//b', { slashes: 'keep', escapedSlashes: 'reject' }), '/a//b')
  t.equal(err(normalizeTarget('/a//b', { slashes: 'reject', escapedSlashes: 'reject' })), 'error')
  t.equal(normalizeTarget('/a/', { slashes: 'reject', escapedSlashes: 'reject' }), '/a/', 'a trailing slash is not an empty segment')
  t.equal(normalizeTarget('/a%2Fb%5Cc', { slashes: 'merge', escapedSlashes: 'keep' }), '/a%2Fb%5Cc')
  t.equal(normalizeTarget('/a/x%2F..%2Fb', { slashes: 'merge', escapedSlashes: 'keep' }), '/a/x%2F..%2Fb', 'kept escapes are not separators')
  t.equal(normalizeTarget('/a%2Fb\\c', { slashes: 'merge', escapedSlashes: 'decode' }), '/a/b/c')
  t.equal(normalizeTarget('/a/x%2F..%2F..%2Fb', { slashes: 'merge', escapedSlashes: 'decode' }), '/b', 'decoded, then dot-segments removed')
  t.equal(err(normalizeTarget('/x%2F..%2F..%2Fb', { slashes: 'merge', escapedSlashes: 'decode' })), 'error')
})

t.test('interimLength: complete 1xx heads are measured; finals, 101 and partial heads are told apart', async t => {
  const b = (s: string): Buffer => Buffer.from(s, 'latin1')
  t.equal(interimLength(b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n')), 25)
  t.equal(interimLength(b('HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n')), 40)
  t.equal(interimLength(b('HTTP/1.1 200 OK\r\n\r\n')), 0, 'final')
  t.equal(interimLength(b('HTTP/1.1 101 Switching Protocols\r\n\r\n')), 0, '101 is not dropped')
  t.equal(interimLength(b('garbage')), 0)
  t.equal(interimLength(b('HTT')), -1, 'too short to tell')
  t.equal(interimLength(b('HTTP/1.1 100 Cont')), -1, 'an unfinished interim head')
})

t.test('a 100 Continue split over packets is still passed over', async t => {
  const pieces = ['HTTP/1.', '1 10', '0 Continue\r', '\n\r', '\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok']
  const srv = createServer(s => {
    s.once('data', async () => {
      for (const p of pieces) {
        s.write(p)
        await new Promise(resolve => setTimeout(resolve, 15))
      }
    })
  })
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { srv.close() })
  const { url } = await startGateway(t, policyYaml(route('r', '/', [{ name: 'a', url: `http://127.0.0.1:${(srv.address() as { port: number }).port}` }])))
  const res = await request(`${url}/x`)
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'ok')
})
