/**
 * TLS to https:// upstreams (docs/upstream-tls.md), against real TLS
 * servers with certificates made by openssl for the test: a trusted
 * channel with its own CA (SNI from tls.servername, not the client's
 * Host); untrusted, expired and wrong-hostname certificates each a 502
 * GW_ERR_UPSTREAM_TLS naming the reason, and a POST without a key still
 * retried to the backup because nothing was sent; an mTLS channel that
 * refuses the gateway without its client certificate and serves it with
 * one; policy mistakes in the tls block; no key material in /status.
 */
import t from 'tap'
import { createServer, type Server } from 'node:https'
import { request } from 'undici'
import { X509Certificate } from 'node:crypto'
import { upstream, startGateway, policyYaml, policyFile, type Teardown } from './helpers/harness.js'
import { makeCerts, type Pem } from './helpers/certs.js'
import { loadPolicyFile } from '../gateway/policy/load.js'
import { runCli } from '../gateway/cli/commands.js'
import { createServer as createHttpServer } from 'node:http'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

interface TlsUpstream { url: string, count: number, servernames: string[], clients: string[], hosts: string[] }

async function tlsUpstream (t: Teardown, pem: Pem, opts: { ca?: string, requireClient?: boolean } = {}): Promise<TlsUpstream> {
  const state: TlsUpstream = { url: '', count: 0, servernames: [], clients: [], hosts: [] }
  const server: Server = createServer({
    key: pem.key,
    cert: pem.cert,
    ...(opts.requireClient === true ? { ca: opts.ca, requestCert: true, rejectUnauthorized: true } : {})
  }, (req, res) => {
    state.count++
    state.hosts.push(String(req.headers.host))
    const sock = req.socket as import('node:tls').TLSSocket
    state.servernames.push(String((sock as unknown as { servername?: string | false }).servername || ''))
    const peer = sock.getPeerCertificate()
    if (peer?.subject?.CN !== undefined) state.clients.push(String(peer.subject.CN))
    req.resume()
    req.on('end', () => { res.end('secure') })
  })
  server.on('tlsClientError', () => {})
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  state.url = `https://127.0.0.1:${(server.address() as { port: number }).port}`
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return state
}

const tlsRoute = (name: string, prefix: string, url: string, tls: string, backup?: string): string => `  - name: ${name}
    match: { pathPrefix: ${prefix} }
${backup === undefined ? '' : '    retry: { attempts: 2 }\n'}    upstreams:
      - name: channel
        url: ${url}
${tls === '' ? '' : `        tls: ${tls}\n`}${backup === undefined ? '' : `      - { name: backup, url: ${backup}, role: backup }\n`}`

t.test('upstream TLS: trusted, untrusted, expired, wrong host, mTLS; coded errors; retried only as never sent', async t => {
  const certs = makeCerts(t)
  const expired = certs.issue('expired', ['DNS:localhost', 'IP:127.0.0.1'], { days: 0 })
  const good = certs.issue('good', ['DNS:localhost', 'DNS:pay.acquirer.test', 'IP:127.0.0.1'])
  const wrongHost = certs.issue('wrong', ['DNS:elsewhere.test'])
  const foreign = certs.foreign('foreign', ['DNS:localhost', 'IP:127.0.0.1'])
  const client = certs.issue('gateway-client', [], { client: true })

  const trusted = await tlsUpstream(t, good)
  const untrusted = await tlsUpstream(t, foreign)
  const stale = await tlsUpstream(t, expired)
  const mismatch = await tlsUpstream(t, wrongHost)
  const mtls = await tlsUpstream(t, good, { ca: certs.ca.cert, requireClient: true })
  const backup = await upstream(t, { name: 'backup' })
  // The expired certificate's notAfter is the second it was made: wait past it.
  const notAfter = Date.parse(new X509Certificate(expired.cert).validTo)
  while (Date.now() <= notAfter + 1000) await new Promise(resolve => setTimeout(resolve, 100))

  const ca = `{ ca: ${JSON.stringify(certs.ca.certFile)}`
  const { url, adminUrl } = await startGateway(t, policyYaml(
    tlsRoute('trusted', '/trusted', trusted.url, `${ca}, servername: pay.acquirer.test }`) +
    tlsRoute('untrusted', '/untrusted', untrusted.url, `${ca} }`, backup.url) +
    tlsRoute('system', '/system', trusted.url, '') +
    tlsRoute('expired', '/expired', stale.url, `${ca} }`) +
    tlsRoute('mismatch', '/mismatch', mismatch.url, `${ca}, servername: pay.acquirer.test }`) +
    tlsRoute('mtls-none', '/mtls-none', mtls.url, `${ca} }`) +
    tlsRoute('mtls', '/mtls', mtls.url, `${ca}, cert: ${JSON.stringify(client.certFile)}, key: ${JSON.stringify(client.keyFile)} }`)))

  const send = async (path: string, method: 'GET' | 'POST' = 'GET'): Promise<{ status: number, code: string, detail: string, body: string }> => {
    const res = await request(`${url}${path}`, { method, headers: { host: 'shop.example', 'content-type': 'application/json' }, body: method === 'POST' ? '{"amount":1}' : undefined })
    const body = await res.body.text()
    let detail = ''
    try { detail = String((JSON.parse(body) as { detail?: unknown }).detail ?? '') } catch {}
    return { status: res.statusCode, code: String(res.headers['x-gateway-error'] ?? ''), detail, body }
  }

  const ok = await send('/trusted/charge', 'POST')
  t.same([ok.status, ok.body], [200, 'secure'], 'a channel signed by the configured CA works')
  t.same(trusted.servernames, ['pay.acquirer.test'], 'SNI is tls.servername, not the client\'s Host')

  const sys = await send('/system/x')
  t.equal(sys.status, 502, 'without the CA, the system store does not trust the test CA')
  t.equal(sys.code, 'GW_ERR_UPSTREAM_TLS')
  t.match(sys.detail, /untrusted/)

  const retried = await send('/untrusted/charge', 'POST')
  t.equal(retried.status, 200, 'an untrusted channel: the POST went to the backup')
  t.equal(untrusted.count, 0, 'the untrusted channel never got the request')
  t.equal(backup.count, 1, 'the backup did, once')

  const exp = await send('/expired/x')
  t.same([exp.status, exp.code], [502, 'GW_ERR_UPSTREAM_TLS'])
  t.match(exp.detail, /expired/)
  const mis = await send('/mismatch/x')
  t.same([mis.status, mis.code], [502, 'GW_ERR_UPSTREAM_TLS'])
  t.match(mis.detail, /hostname mismatch/)

  const refused = await send('/mtls-none/x')
  t.same([refused.status, refused.code], [502, 'GW_ERR_UPSTREAM_TLS'], 'an mTLS channel refuses the gateway without its certificate')
  t.match(refused.detail, /handshake failure/)
  t.equal(mtls.count, 0)
  const served = await send('/mtls/x')
  t.same([served.status, served.body], [200, 'secure'], 'and serves it with one')
  t.same(mtls.clients, ['gateway-client'], 'the channel saw the gateway\'s client certificate')
  for (const r of [sys, exp, mis, refused]) t.notMatch(r.body, /127\.0\.0\.1|BEGIN|localhost/, 'no address or certificate in the problem')

  const status = await (await request(`${adminUrl}/status`)).body.text()
  t.notMatch(status, /BEGIN|PRIVATE/, '/status holds no key material')
  const doc = JSON.parse(status) as { routes: Array<{ name: string, upstreams: Array<{ tls: unknown }> }> }
  t.same(doc.routes.find(r => r.name === 'mtls')?.upstreams[0]?.tls, { servername: null, minVersion: 'TLSv1.2', verify: true, ca: 'custom', clientCertificate: true })
  t.same(doc.routes.find(r => r.name === 'trusted')?.upstreams[0]?.tls, { servername: 'pay.acquirer.test', minVersion: 'TLSv1.2', verify: true, ca: 'custom', clientCertificate: false })
})

t.test('policy: tls mistakes are coded issues at their lines; the key is never in them', async t => {
  const certs = makeCerts(t)
  const client = certs.issue('c', [], { client: true })
  const other = certs.issue('d', [], { client: true })
  const yaml = policyYaml(
    tlsRoute('a', '/a', 'https://127.0.0.1:9443', '{ ca: ./missing-ca.pem }') +
    tlsRoute('b', '/b', 'https://127.0.0.1:9443', `{ cert: ${JSON.stringify(client.certFile)} }`) +
    tlsRoute('c', '/c', 'http://127.0.0.1:9080', `{ ca: ${JSON.stringify(certs.ca.certFile)} }`) +
    tlsRoute('d', '/d', 'https://127.0.0.1:9443', `{ cert: ${JSON.stringify(client.certFile)}, key: ${JSON.stringify(other.keyFile)} }`))
  const loaded = await loadPolicyFile(await policyFile(yaml))
  t.equal(loaded.ok, false)
  const issues = loaded.ok ? [] : loaded.issues
  const text = issues.map(i => `${i.path}: ${i.message}`).join('\n')
  t.match(text, /routes\[0\]\.upstreams\[0\]\.tls\.ca: cannot read the ca file \.\/missing-ca\.pem \(ENOENT\)/)
  t.match(text, /routes\[1\]\.upstreams\[0\]\.tls\.key: a client certificate needs both cert and key/)
  t.match(text, /routes\[2\]\.upstreams\[0\]\.tls: tls applies to https:\/\/ upstreams only/)
  t.match(text, /routes\[3\]\.upstreams\[0\]\.tls: the TLS files cannot be used/, 'a key that does not match its certificate')
  t.notMatch(text, /BEGIN|PRIVATE KEY/, 'no PEM text in the messages')
})

t.test('Host for foreign channels: https:// upstreams get their own host by default, http:// ones the client\'s; gateway check warns about an unspoken mix', async t => {
  const certs = makeCerts(t)
  const good = certs.issue('good', ['DNS:localhost', 'IP:127.0.0.1'])
  const foreign = await tlsUpstream(t, good)
  const sameHosts: string[] = []
  const same = createHttpServer((req, res) => { sameHosts.push(String(req.headers.host)); req.resume(); res.end('same') })
  await new Promise<void>(resolve => same.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { same.closeAllConnections(); await new Promise(resolve => same.close(resolve)) })
  const sameUrl = `http://127.0.0.1:${(same.address() as { port: number }).port}`
  const ca = JSON.stringify(certs.ca.certFile)
  const yaml = policyYaml(`  - name: mixed
    match: { pathPrefix: /mixed }
    upstreams:
      - { name: same, url: ${sameUrl} }
      - { name: channel, url: ${foreign.url}, role: backup, tls: { ca: ${ca} } }
  - name: said
    match: { pathPrefix: /said }
    upstreams:
      - { name: channel, url: ${foreign.url}, host: client, tls: { ca: ${ca} } }
`)
  const { url, file } = await startGateway(t, yaml)
  for (const path of ['/mixed/a', '/said/b']) {
    const res = await request(`${url}${path}`, { headers: { host: 'shop.example' } })
    await res.body.dump()
    t.equal(res.statusCode, 200, path)
  }
  t.same(sameHosts, ['shop.example'], 'the same-service http:// upstream got the client\'s Host (preserveHost)')
  t.same(foreign.hosts, ['shop.example'], 'host: client on an https:// upstream sends the client\'s Host')
  const foreignOnly = await startGateway(t, policyYaml(`  - name: pay
    match: { pathPrefix: /pay }
    upstreams:
      - { name: channel, url: ${foreign.url}, tls: { ca: ${ca} } }
`))
  const res = await request(`${foreignOnly.url}/pay/x`, { headers: { host: 'shop.example' } })
  await res.body.dump()
  t.equal(foreign.hosts[1], new URL(foreign.url).host, 'by default an https:// upstream gets the host of its own URL')

  let out = ''
  const code = await runCli(['check', file], { write: (s: string) => { out += s } }, { write: () => {} })
  t.equal(code, 0, 'a warning does not fail the check')
  t.match(out, /warning \[GW_WARN_HOST_MIXED\]: route "mixed" mixes upstreams that get the client's Host \(same\) with upstreams that get their own \(channel\)/)
  t.notMatch(out, /route "said"/, 'a route that says host: on its upstreams is not warned about')
})

t.test('a CA file replaced on disk is picked up by a reload of an unchanged policy file', async t => {
  const certs = makeCerts(t)
  const good = certs.issue('good', ['DNS:localhost', 'IP:127.0.0.1'])
  certs.foreign('unrelated', [])
  const channel = await tlsUpstream(t, good)
  const caFile = join(certs.dir, 'trusted-ca.pem')
  writeFileSync(caFile, certs.ca.cert)
  const { gw, url } = await startGateway(t, policyYaml(tlsRoute('pay', '/pay', channel.url, `{ ca: ${JSON.stringify(caFile)} }`)))
  const status = async (): Promise<number> => {
    const res = await request(`${url}/pay/x`)
    await res.body.dump()
    return res.statusCode
  }
  t.equal(await status(), 200, 'trusted with the CA as it was')
  t.equal((await gw.reload('signal')).changed, false, 'nothing changed: a no-op')
  writeFileSync(caFile, readFileSync(join(certs.dir, 'other-ca.crt'), 'utf8'))
  const swapped = await gw.reload('signal')
  t.equal(swapped.ok && swapped.changed, true, 'the same policy file with another CA on disk is a change')
  t.equal(await status(), 502, 'the new CA does not sign the channel: untrusted now')
  writeFileSync(caFile, certs.ca.cert)
  t.equal((await gw.reload('signal')).changed, true)
  t.equal(await status(), 200, 'and trusted again after the file is put back')
})
