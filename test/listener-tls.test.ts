/**
 * TLS listeners (docs/listener-tls.md) with certificates made by openssl
 * for the test: two certificates chosen by SNI (the first one the
 * default), X-Forwarded-Proto https and HSTS, minVersion, client
 * certificates required or optional (and X-Forwarded-Client-Cert, never
 * taken from the client), a certificate swapped on disk picked up by the
 * file watcher while a load runs with no failed request, what a reload may
 * and may not change, policy mistakes, no key material in /status.
 */
import t from 'tap'
import { request as httpsRequest, type RequestOptions } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { copyFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { upstream, startGateway, policyYaml, route, policyFile, type Teardown } from './helpers/harness.js'
import { makeCerts, type Certs, type Pem } from './helpers/certs.js'
import { loadPolicyFile } from '../gateway/policy/load.js'

interface Reply { status: number, body: string, headers: Record<string, string | string[] | undefined>, subject: string, protocol: string | null, serial: string }

/** One HTTPS request on a new connection (agent: false), trusting the test CA. */
async function get (port: number, path: string, opts: RequestOptions = {}): Promise<Reply> {
  return await new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, agent: false, method: 'GET', ...opts }, res => {
      const sock = res.socket as TLSSocket
      const peer = sock.getPeerCertificate()
      const protocol = sock.getProtocol()
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body, headers: res.headers, subject: String(peer.subject?.CN ?? ''), protocol, serial: peer.serialNumber }) })
    })
    req.on('error', reject)
    req.end()
  })
}

function tlsPolicy (upstreamUrl: string, tls: string, extra = ''): string {
  return policyYaml(route('api', '/', [{ name: 'app', url: upstreamUrl }]), extra).replace('    port: 0\nadmin:', `    port: 0\n    tls:\n${tls}\nadmin:`)
}

const certBlock = (pems: Array<{ pem: Pem, names?: string[] }>): string => '      certificates:\n' + pems.map(({ pem, names }) =>
  `        - { cert: ${JSON.stringify(pem.certFile)}, key: ${JSON.stringify(pem.keyFile)}${names === undefined ? '' : `, serverNames: ${JSON.stringify(names)}`} }`).join('\n')

async function started (t: Teardown, yaml: string, watch = false): Promise<{ port: number, adminUrl: string, file: string, gw: Awaited<ReturnType<typeof startGateway>>['gw'] }> {
  const s = await startGateway(t, yaml, { watch })
  return { port: Number(new URL(s.url).port), adminUrl: s.adminUrl, file: s.file, gw: s.gw }
}

t.test('SNI picks the certificate; X-Forwarded-Proto https; HSTS; minVersion', async t => {
  const certs = makeCerts(t)
  const pay = certs.issue('pay', ['DNS:pay.example.test', 'IP:127.0.0.1'])
  const shop = certs.issue('shop', ['DNS:*.shop.example.test'])
  const app = await upstream(t, { name: 'app' })
  const { port, adminUrl } = await started(t, tlsPolicy(app.url, certBlock([{ pem: pay }, { pem: shop }]) + '\n      minVersion: TLSv1.3\n      hsts: { maxAgeSeconds: 600, includeSubDomains: true }'))
  const ca = certs.ca.cert

  const a = await get(port, '/a', { ca, servername: 'pay.example.test' })
  t.equal(a.status, 200)
  t.equal(a.subject, 'pay', 'exact name: the pay certificate')
  t.equal(a.protocol, 'TLSv1.3')
  t.equal(a.headers['strict-transport-security'], 'max-age=600; includeSubDomains', 'HSTS on the response')
  const seen = app.received.at(-1)
  t.equal(seen?.headers['x-forwarded-proto'], 'https', 'the upstream is told the client used https')
  t.match(String(seen?.headers.forwarded), /proto=https/)
  t.equal(seen?.headers['x-forwarded-client-cert'], undefined, 'no client certificate: no XFCC')

  const b = await get(port, '/b', { ca, servername: 'checkout.shop.example.test' })
  t.equal(b.subject, 'shop', 'wildcard name: the shop certificate')
  const c = await get(port, '/c', { ca, servername: 'CHECKOUT.Shop.Example.Test' })
  t.equal(c.subject, 'shop', 'names compare without case')
  const d = await get(port, '/d', { ca, servername: 'deep.checkout.shop.example.test', checkServerIdentity: () => undefined })
  t.equal(d.subject, 'pay', 'a wildcard matches one label only: the default answers')
  const e = await get(port, '/e', { ca, servername: '' , checkServerIdentity: () => undefined })
  t.equal(e.subject, 'pay', 'no SNI: the first certificate')

  await t.rejects(get(port, '/old', { ca, servername: 'pay.example.test', maxVersion: 'TLSv1.2' }), 'a TLSv1.2 client is refused under minVersion TLSv1.3')
  await t.rejects(get(port, '/untrusted', { servername: 'pay.example.test' }), 'a client that does not trust the CA refuses the gateway')
  const plain = await request(`http://127.0.0.1:${port}/x`).then(r => r.statusCode, (err: Error) => err.name)
  t.not(plain, 200, 'plain HTTP to a TLS listener is not served')

  const status = await (await request(`${adminUrl}/status`)).body.json() as { listeners: Array<{ tls: { certificates: Array<{ names: string[], subject: string, notAfter: string }>, minVersion: string, handshakeFailures: number } }> }
  const tls = status.listeners[0]?.tls
  t.same(tls?.certificates.map(x => x.names), [['pay.example.test'], ['*.shop.example.test']], '/status lists the names')
  t.equal(tls?.minVersion, 'TLSv1.3')
  t.ok((tls?.handshakeFailures ?? 0) >= 2, 'failed handshakes are counted')
  const text = JSON.stringify(status)
  t.notOk(text.includes('PRIVATE KEY') || text.includes('BEGIN CERTIFICATE'), 'no PEM in /status')
})

t.test('client certificates: require, optional; X-Forwarded-Client-Cert from the verified certificate only', async t => {
  const certs = makeCerts(t)
  const server = certs.issue('gw', ['DNS:gw.example.test', 'IP:127.0.0.1'])
  const client = certs.issue('merchant-7', [], { client: true })
  const stranger = certs.foreign('stranger', [])
  const app = await upstream(t, { name: 'app' })
  const ca = certs.ca.cert
  const clientAuth = (mode: string): string => `\n      clientAuth: { ca: ${JSON.stringify(certs.ca.certFile)}, mode: ${mode} }`

  const req = await started(t, tlsPolicy(app.url, certBlock([{ pem: server }]) + clientAuth('require')))
  const ok = await get(req.port, '/ok', { ca, cert: client.cert, key: client.key, headers: { 'x-forwarded-client-cert': 'Hash=forged' } })
  t.equal(ok.status, 200, 'a client with a certificate from the CA is served')
  const xfcc = String(app.received.at(-1)?.headers['x-forwarded-client-cert'])
  t.match(xfcc, /^Hash=[0-9a-f]{64};Subject="CN=merchant-7"$/, 'the verified certificate is passed on')
  t.notOk(xfcc.includes('forged'), 'the client\'s own XFCC is removed')
  await t.rejects(get(req.port, '/none', { ca }), 'require: no client certificate, no connection')
  await t.rejects(get(req.port, '/foreign', { ca, cert: stranger.cert, key: stranger.key }), 'require: a certificate from another CA is refused')

  const opt = await started(t, tlsPolicy(app.url, certBlock([{ pem: server }]) + clientAuth('optional')))
  const none = await get(opt.port, '/none', { ca, headers: { 'x-forwarded-client-cert': 'Hash=forged' } })
  t.equal(none.status, 200, 'optional: a client without a certificate is served')
  t.equal(app.received.at(-1)?.headers['x-forwarded-client-cert'], undefined, 'optional, none sent: no XFCC (the forged one removed)')
  const withCert = await get(opt.port, '/with', { ca, cert: client.cert, key: client.key })
  t.equal(withCert.status, 200)
  t.match(String(app.received.at(-1)?.headers['x-forwarded-client-cert']), /Subject="CN=merchant-7"/)
  await t.rejects(get(opt.port, '/foreign', { ca, cert: stranger.cert, key: stranger.key }), 'optional: a certificate that does not verify is refused')
})

/** Copies a certificate pair over the files the policy names, each by rename (what cert tools do). */
function swapInto (dir: string, pem: Pem, names: { cert: string, key: string }): void {
  copyFileSync(pem.keyFile, join(dir, 'next.key'))
  copyFileSync(pem.certFile, join(dir, 'next.crt'))
  renameSync(join(dir, 'next.key'), names.key)
  renameSync(join(dir, 'next.crt'), names.cert)
}

t.test('a certificate swapped on disk is picked up while a load runs, with no failed request', async t => {
  const certs = makeCerts(t)
  const first = certs.issue('first', ['DNS:pay.example.test', 'IP:127.0.0.1'])
  const second = certs.issue('second', ['DNS:pay.example.test', 'IP:127.0.0.1'])
  const live = { cert: join(certs.dir, 'live.crt'), key: join(certs.dir, 'live.key') }
  copyFileSync(first.certFile, live.cert)
  copyFileSync(first.keyFile, live.key)
  const app = await upstream(t, { name: 'app' })
  const { port } = await started(t, tlsPolicy(app.url, certBlock([{ pem: { ...first, certFile: live.cert, keyFile: live.key } }])), true)
  const ca = certs.ca.cert

  // A load on new connections and on one kept-alive connection.
  let failed = 0
  let served = 0
  let stop = false
  const subjects = new Set<string>()
  const { Agent } = await import('node:https')
  const keep = new Agent({ keepAlive: true, maxSockets: 1, ca })
  t.teardown(() => keep.destroy())
  const worker = async (fresh: boolean): Promise<void> => {
    while (!stop) {
      try {
        const r = await get(port, '/load', fresh ? { ca, servername: 'pay.example.test' } : { agent: keep, servername: 'pay.example.test' } as RequestOptions)
        if (r.status === 200) served++
        else failed++
        subjects.add(r.subject)
      } catch {
        failed++
      }
    }
  }
  const load = [worker(true), worker(true), worker(false)]
  await new Promise(resolve => setTimeout(resolve, 500))
  swapInto(certs.dir, second, live)
  const deadline = Date.now() + 10_000
  let now = ''
  while (Date.now() < deadline) {
    now = (await get(port, '/probe', { ca, servername: 'pay.example.test' })).subject
    if (now === 'second') break
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  await new Promise(resolve => setTimeout(resolve, 300))
  stop = true
  await Promise.all(load)
  t.equal(now, 'second', 'new connections get the new certificate without a restart')
  t.equal(failed, 0, 'no request failed during the swap')
  t.ok(served > 20, `the load ran (${served} served)`)
  t.ok(subjects.has('first') && subjects.has('second'), 'the load saw both certificates')

  // A key that does not match its certificate: the reload is refused, the running certificate stays.
  writeFileSync(live.key, first.key)
  await new Promise(resolve => setTimeout(resolve, 600))
  t.equal((await get(port, '/after', { ca, servername: 'pay.example.test' })).subject, 'second', 'a mismatched pair on disk never replaces the running certificate')
})

t.test('reload: certificates and HSTS change in place; turning TLS off or changing clientAuth.mode is refused', async t => {
  const certs = makeCerts(t)
  const one = certs.issue('one', ['DNS:a.test', 'IP:127.0.0.1'])
  const two = certs.issue('two', ['DNS:a.test', 'IP:127.0.0.1'])
  const app = await upstream(t, { name: 'app' })
  const { port, file, gw } = await started(t, tlsPolicy(app.url, certBlock([{ pem: one }])))
  const ca = certs.ca.cert
  t.equal((await get(port, '/', { ca })).headers['strict-transport-security'], undefined, 'no hsts block: no header')
  writeFileSync(file, tlsPolicy(app.url, certBlock([{ pem: two }]) + '\n      hsts: {}'))
  const r = await gw.reload('admin')
  t.equal(r.ok && r.changed, true, 'a new certificate and HSTS reload')
  const after = await get(port, '/', { ca })
  t.equal(after.subject, 'two')
  t.equal(after.headers['strict-transport-security'], 'max-age=31536000', 'HSTS default: a year')

  writeFileSync(file, policyYaml(route('api', '/', [{ name: 'app', url: app.url }])))
  const off = await gw.reload('admin')
  t.equal(off.ok, false)
  t.equal(off.code, 'GW_ERR_POLICY_STATIC_CHANGED', 'TLS off needs a restart')
  writeFileSync(file, tlsPolicy(app.url, certBlock([{ pem: two }]) + `\n      clientAuth: { ca: ${JSON.stringify(certs.ca.certFile)} }`))
  t.equal((await gw.reload('admin')).code, 'GW_ERR_POLICY_STATIC_CHANGED', 'adding client authentication needs a restart')
  t.equal((await get(port, '/', { ca })).subject, 'two', 'the running TLS stays')
})

t.test('policy mistakes in a listener tls block', async t => {
  const certs: Certs = makeCerts(t)
  const a = certs.issue('a', ['DNS:a.test'])
  const b = certs.issue('b', ['DNS:a.test'])
  const ipOnly = certs.issue('ip', ['IP:127.0.0.1'])
  const bad = async (tls: string): Promise<string> => {
    const loaded = await loadPolicyFile(await policyFile(tlsPolicy('http://127.0.0.1:9', tls)), {})
    return loaded.ok ? 'ok' : loaded.issues.map(i => `${i.path}: ${i.message}`).join('\n')
  }
  t.match(await bad(`      certificates:\n        - { cert: /nonexistent/x.crt, key: ${JSON.stringify(a.keyFile)} }`), /certificates\[0\]\.cert: cannot read the cert file.*ENOENT/)
  t.match(await bad(`      certificates:\n        - { cert: ${JSON.stringify(a.certFile)}, key: ${JSON.stringify(b.keyFile)} }`), /certificate and key cannot be used/, 'a key of another certificate')
  t.match(await bad(`      certificates:\n        - { cert: ${JSON.stringify(a.keyFile)}, key: ${JSON.stringify(a.keyFile)} }`), /cannot be used/, 'a key file given as the certificate')
  t.match(await bad(certBlock([{ pem: a }, { pem: b }])), /a\.test is answered by certificates 0 and 1/, 'one name, two certificates')
  t.match(await bad(certBlock([{ pem: a }, { pem: ipOnly }])), /SNI can never choose it/, 'a second certificate without a DNS name')
  t.equal(await bad(certBlock([{ pem: ipOnly }, { pem: a }])), 'ok', 'an IP-only certificate may be the default')
  t.match(await bad(certBlock([{ pem: a }]) + '\n      clientAuth: { ca: /nonexistent/ca.pem }'), /clientAuth\.ca: cannot read/)
  t.match(await bad(certBlock([{ pem: a }]) + `\n      clientAuth: { ca: ${JSON.stringify(a.keyFile)} }`), /client CA file cannot be used/)
  t.match(await bad(certBlock([{ pem: a }]) + '\n      minVersion: TLSv1.0'), /minVersion/)
  t.match(await bad('      certificates: []'), /certificates/)
})
