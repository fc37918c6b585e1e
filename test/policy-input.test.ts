/**
 * Policy input limits (docs/policy-limits.md): an alias bomb, a file over
 * 1 MiB, bytes that are not UTF-8, absurd durations and sizes, and upstream
 * URLs that are not really URLs are each refused by `gateway check` with a
 * code and a file:line:column, never a stack trace; a reload of such a file
 * answers 422 with the code, is logged and is an event in GET /events.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { runCli } from '../gateway/cli/commands.js'
import { loadPolicyText } from '../gateway/policy/load.js'
import { invalidUtf8Offset, MAX_POLICY_BYTES } from '../gateway/policy/input.js'
import { checkUpstreamUrl } from '../gateway/policy/upstream-url.js'
import { MAX_ALIAS_EXPANSION } from '../gateway/policy/aliases.js'
import { parseDocument } from 'yaml'
import { Gateway } from '../gateway/app/gateway.js'
import type { Logger } from '../gateway/core/logger.js'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'

const dir = mkdtempSync(join(tmpdir(), 'gw-input-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let fileNo = 0

/** A writer for runCli that keeps what it is given. */
function capture (): { write: (s: string) => boolean, text: () => string } {
  let buf = ''
  return { write: (s: string) => { buf += s; return true }, text: () => buf }
}

/** Writes `content` to a new file and runs `gateway check` on it. */
async function check (content: string | Uint8Array): Promise<{ file: string, code: number | null, out: string, err: string }> {
  const file = join(dir, `policy-${++fileNo}.yaml`)
  writeFileSync(file, content)
  const out = capture()
  const err = capture()
  const code = await runCli(['check', file], out, err)
  return { file, code, out: out.text(), err: err.text() }
}

/** No stack frame, no path of the gateway's own files. */
function noInternals (t: { notMatch: (found: unknown, pattern: RegExp, message: string) => unknown }, text: string): void {
  t.notMatch(text, /^\s*at /m, 'no stack frames')
  t.notMatch(text, /\/work\/|node_modules|\.ts:\d+/, 'no internal paths')
}

/** 1-based line and column of the first `needle` on the line that holds `lineHas`. */
function pos (lines: readonly string[], lineHas: string, needle = lineHas): string {
  const i = lines.findIndex(l => l.includes(lineHas))
  if (i === -1) throw new Error(`no line holds ${lineHas}`)
  return `${i + 1}:${(lines[i] as string).indexOf(needle) + 1}`
}

const POLICY = [
  'listeners:',
  '  - port: 18080',
  'routes:',
  '  - name: r',
  '    match: { pathPrefix: / }',
  '    upstreams:',
  '      - { name: a, url: "http://127.0.0.1:9101" }',
  ''
]

const BOMB = [
  'x-a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
  'x-b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
  'x-c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
  'x-d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
  'x-e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
  'x-f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]',
  'x-g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]',
  'x-h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]',
  'x-i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]'
]

t.test('an alias bomb is refused at the alias, with a code, no stack', async t => {
  const lines = [...POLICY, ...BOMB, '']
  const r = await check(lines.join('\n'))
  t.equal(r.code, 1, 'exit 1')
  t.match(r.err, `FAIL ${r.file}: 1 problem [GW_ERR_POLICY_ALIASES]`)
  // One *b costs 10 (the 10 uses of *a inside); the first *c costs
  // 2 × (10 uses of *b × 10) = 200, over the limit of 100.
  t.match(r.err, `${r.file}:${pos(lines, 'x-d:', '*c')} aliases expand too much: *c would cost 200 expansions, more than the limit of 100`)
  noInternals(t, r.err)

  const fine = await check([...POLICY, 'x-shared: &s { connect: 1s }', 'x-use: [*s, *s, *s]', ''].join('\n'))
  t.match(fine.err, /unknown key "x-shared"/, 'a few aliases are only a schema matter')
  t.notMatch(fine.err, /GW_ERR_POLICY_ALIASES/)
})

t.test('the alias limit is the yaml library\'s own, checked first', async t => {
  // An anchor used 99 times costs 100 expansions (it counts once itself):
  // at the limit. Used 100 times: 101, over it, for this check and for yaml.
  for (const [uses, ok] of [[99, true], [100, false]] as const) {
    const text = `${POLICY.join('\n')}x-a: &a 1\nx-b: [${Array.from({ length: uses }, () => '*a').join(', ')}]\n`
    const r = loadPolicyText('aliases.yaml', text)
    t.equal(r.ok === false && r.code === 'GW_ERR_POLICY_ALIASES', !ok, `${uses} uses: ${ok ? 'within' : 'over'} the limit`)
    let libraryThrows = false
    try { parseDocument(text).toJS({ maxAliasCount: MAX_ALIAS_EXPANSION }) } catch { libraryThrows = true }
    t.equal(libraryThrows, !ok, `${uses} uses: the yaml library agrees`)
  }
})

t.test('dangling and self-containing aliases are located', async t => {
  const dangling = [...POLICY, 'x: *nowhere', '']
  const d = await check(dangling.join('\n'))
  t.equal(d.code, 1)
  t.match(d.err, `[GW_ERR_POLICY_ALIASES]\n  ${d.file}:${pos(dangling, '*nowhere')} alias *nowhere has no anchor &nowhere before it`)
  const cycle = [...POLICY, 'x: &loop [1, *loop]', '']
  const c = await check(cycle.join('\n'))
  t.match(c.err, `${c.file}:${pos(cycle, '*loop')} alias *loop is inside the node anchored as &loop`)
  noInternals(t, d.err + c.err)
})

t.test('a file over 1 MiB is refused before it is parsed', async t => {
  const valid = POLICY.join('\n')
  const pad = (total: number): string => valid + '#'.repeat(total - Buffer.byteLength(valid) - 1) + '\n'
  const over = await check(pad(MAX_POLICY_BYTES + 1))
  t.equal(over.code, 1)
  t.match(over.err, `FAIL ${over.file}: 1 problem [GW_ERR_POLICY_TOO_LARGE]\n  ${over.file}:1:1 the policy is larger than 1048576 bytes (1 MiB)`)
  noInternals(t, over.err)
  const atLimit = await check(pad(MAX_POLICY_BYTES))
  t.equal(atLimit.code, 0, `exactly 1 MiB is fine: ${atLimit.err}`)

  const huge = await check(Buffer.alloc(8 * MAX_POLICY_BYTES, 0x23))
  t.match(huge.err, '[GW_ERR_POLICY_TOO_LARGE]', 'a much larger file too')

  const text = loadPolicyText('inline.yaml', '# é\n'.repeat(300_000))
  t.match(text, { ok: false, code: 'GW_ERR_POLICY_TOO_LARGE', issues: [{ line: 1, column: 1 }] }, 'loadPolicyText counts bytes, not characters')
})

t.test('bytes that are not UTF-8 are refused at their line:column', async t => {
  const latin1 = Buffer.concat([
    Buffer.from(POLICY.slice(0, 3).join('\n') + '\n# prix: 5 '), Buffer.from([0x80]), Buffer.from('\n' + POLICY.slice(3).join('\n'))
  ])
  const r = await check(latin1)
  t.equal(r.code, 1)
  t.match(r.err, `FAIL ${r.file}: 1 problem [GW_ERR_POLICY_ENCODING]\n  ${r.file}:4:11 not valid UTF-8: byte 0x80`)
  noInternals(t, r.err)

  // Columns count characters: "é" and "€" before the bad byte are one each.
  const wide = Buffer.concat([Buffer.from(POLICY.join('\n') + '# é€ '), Buffer.from([0xC3, 0x28]), Buffer.from('\n')])
  t.match((await check(wide)).err, `:${POLICY.length}:6 not valid UTF-8: byte 0xC3`)

  const bom = await check(Buffer.concat([Buffer.from([0xEF, 0xBB, 0xBF]), Buffer.from(POLICY.join('\n') + '# é\n')]))
  t.equal(bom.code, 0, `a BOM and real UTF-8 are fine: ${bom.err}`)

  const r2 = loadPolicyText('bytes.yaml', new Uint8Array([0x61, 0x3A, 0x20, 0xFF, 0x0A]))
  t.match(r2, { ok: false, code: 'GW_ERR_POLICY_ENCODING', issues: [{ line: 1, column: 4 }] }, 'loadPolicyText decodes bytes strictly')
})

t.test('the UTF-8 check agrees with a fatal TextDecoder', async t => {
  const cases: Array<[string, number[], number]> = [
    ['ascii', [0x61, 0x62], -1],
    ['2-byte', [0xC3, 0xA9], -1],
    ['4-byte', [0xF0, 0x9F, 0x98, 0x80], -1],
    ['overlong /', [0x61, 0xC0, 0xAF], 1],
    ['overlong 3-byte', [0xE0, 0x80, 0xAF], 0],
    ['surrogate', [0x61, 0x62, 0xED, 0xA0, 0x80], 2],
    ['above U+10FFFF', [0xF4, 0x90, 0x80, 0x80], 0],
    ['truncated at end', [0x61, 0xE2, 0x82], 1],
    ['truncated before ascii', [0xE2, 0x82, 0x61], 0],
    ['lone continuation', [0x61, 0xBF], 1]
  ]
  const fatal = new TextDecoder('utf-8', { fatal: true })
  for (const [what, bytes, at] of cases) {
    t.equal(invalidUtf8Offset(new Uint8Array(bytes)), at, what)
    let decodes = true
    try { fatal.decode(new Uint8Array(bytes)) } catch { decodes = false }
    t.equal(decodes, at === -1, `${what}: TextDecoder agrees`)
  }
})

t.test('durations above 24h and sizes above 1024mb are refused, for every key', async t => {
  const lines = [
    'listeners:',
    '  - port: 18080',
    'stats: { window: 48h }',
    'shutdown: { drainTimeout: 99999999999999999999h }',
    'defaults:',
    '  timeouts: { connect: 25h, responseHeaders: 24h }',
    'routes:',
    '  - name: r',
    '    match: { pathPrefix: / }',
    '    timeouts: { total: 1441m }',
    '    breaker: { openFor: 86401s, maxOpenFor: 86400001ms }',
    '    shift: { threshold: 999999h }',
    '    retry: { bufferBody: 1025mb, backoff: { max: 30000h } }',
    '    idempotency: { ttl: 24h, maxBodySize: 99999999999999999999999kb }',
    '    hedge: { delay: 100000s }',
    '    upstreams:',
    '      - { name: a, url: "http://127.0.0.1:9101" }',
    '      - { name: b, url: "http://127.0.0.1:9102", role: backup }',
    ''
  ]
  const r = await check(lines.join('\n'))
  t.equal(r.code, 1)
  const tooLong: Array<[string, string]> = [
    ['stats.window', '48h'],
    ['shutdown.drainTimeout', '99999999999999999999h'],
    ['defaults.timeouts.connect', '25h'],
    ['routes[0].timeouts.total', '1441m'],
    ['routes[0].breaker.openFor', '86401s'],
    ['routes[0].breaker.maxOpenFor', '86400001ms'],
    ['routes[0].shift.threshold', '999999h'],
    ['routes[0].retry.backoff.max', '30000h'],
    ['routes[0].hedge.delay', '100000s']
  ]
  for (const [path, value] of tooLong) {
    t.match(r.err, `${r.file}:${pos(lines, `: ${value}`, value)} ${path}: "${value}" is too long: a duration may be at most 24h`, path)
  }
  const tooLarge: Array<[string, string]> = [['routes[0].retry.bufferBody', '1025mb'], ['routes[0].idempotency.maxBodySize', '99999999999999999999999kb']]
  for (const [path, value] of tooLarge) {
    t.match(r.err, `${r.file}:${pos(lines, `: ${value}`, value)} ${path}: "${value}" is too large: a size may be at most 1024mb`, path)
  }
  t.match(r.err, `FAIL ${r.file}: ${tooLong.length + 2} problems [GW_ERR_POLICY_INVALID]`, 'nothing else is reported (no knock-on errors)')
  t.notMatch(r.err, /responseHeaders|ttl/, 'exactly 24h is accepted')
  noInternals(t, r.err)
})

t.test('upstream URLs are checked: port, host, scheme, credentials, query', async t => {
  const bad = [
    ['http://127.0.0.1:99999', /port 99999 is out of range; use a port from 1 to 65535/],
    ['http://[::1', /the IPv6 address is missing its closing "]"/],
    ['http://a_b$c', /host "a_b\$c" is not a valid host name/],
    ['http://user:secret@pay.internal:8080', /credentials \(user:password@\) are not allowed/],
    ['http://10.0.0.5:0', /port 0 means "any free port"/],
    ['http://127.1:8080', /"127\.1" is not a valid IPv4 address/],
    ['http://pay.internal:/api', /the port after ":" is missing/],
    ['http://-pay.internal', /is not a valid host name/],
    [`http://${'a'.repeat(64)}.internal`, /is 64 characters long, more than 63/]
  ] as const
  const lines = [
    ...POLICY.slice(0, 6), // everything above the upstream list
    ...bad.map(([url], j) => `      - { name: u${j}, url: "${url}" }`),
    ''
  ]
  const r = await check(lines.join('\n'))
  t.equal(r.code, 1)
  t.match(r.err, `FAIL ${r.file}: ${bad.length} problems [GW_ERR_POLICY_INVALID]`)
  const issueLines = r.err.split('\n').filter(l => l.startsWith('  '))
  bad.forEach(([url, message], j) => {
    const prefix = `  ${r.file}:${pos(lines, `name: u${j},`, `"${url}`)} routes[0].upstreams[${j}].url: ${JSON.stringify(url)} is not a valid upstream URL: `
    const line = issueLines.find(l => l.startsWith(prefix))
    t.ok(line !== undefined, `${url}: located issue\n${r.err}`)
    t.match(line, message, `${url}: says what is wrong`)
    t.match(line, /\(write a URL like http:\/\/10\.0\.0\.5:8080/, `${url}: says how to fix it`)
  })
  noInternals(t, r.err)

  for (const good of ['http://10.0.0.5:8080', 'https://pay.internal/api', 'http://[::1]:8080/v2/', 'http://localhost', 'http://svc-1.ns.svc.cluster.local.:65535', 'HTTPS://Pay.Internal']) {
    t.match(checkUpstreamUrl(good), { ok: true }, `${good} is accepted`)
  }
  t.match(checkUpstreamUrl('http://pay.internal/api?x=1'), { ok: false, message: /query/ })
  t.match(checkUpstreamUrl('ftp://pay.internal'), { ok: false, message: /the scheme must be http or https, not ftp/ })
  t.match(checkUpstreamUrl('http://[fe80::1%25eth0]'), { ok: false, message: /not a valid IPv6 address/ })
})

/** A logger that keeps its error lines. */
function recordingLogger (): Logger & { errors: Array<{ obj: Record<string, unknown>, msg: string }> } {
  const errors: Array<{ obj: Record<string, unknown>, msg: string }> = []
  const noop = (): void => {}
  return { errors, info: noop, warn: noop, debug: noop, error: (obj, msg) => { errors.push({ obj: obj as Record<string, unknown>, msg }) } }
}

t.test('reloading an alias bomb: 422 with the code, a log line per trigger, a policy.rejected event', async t => {
  const a = await upstream(t, { name: 'a' })
  const logger = recordingLogger()
  const good = policyYaml(route('r', '/', [{ name: 'a', url: a.url }]))
  const { adminUrl, file, gw, url } = await startGateway(t, good, { logger })
  const bombText = good + BOMB.join('\n') + '\n'
  await writeFile(file, bombText)

  const res = await request(`${adminUrl}/reload`, { method: 'POST' })
  t.equal(res.statusCode, 422, 'not a 500')
  const body = await res.body.json() as { code: string, issues: Array<{ line: number, column: number, message: string }> }
  t.equal(body.code, 'GW_ERR_POLICY_ALIASES')
  const lines = bombText.split('\n')
  const [line, column] = pos(lines, 'x-d:', '*c').split(':').map(Number)
  t.match(body.issues, [{ line, column, message: /aliases expand too much/ }])

  for (const trigger of ['signal', 'file'] as const) {
    const r = await gw.reload(trigger)
    t.match(r, { ok: false, code: 'GW_ERR_POLICY_ALIASES' }, `${trigger}: rejected`)
  }
  t.same(logger.errors.map(e => [e.obj.trigger, e.obj.code, e.msg]), ['admin', 'signal', 'file'].map(tr => [tr, 'GW_ERR_POLICY_ALIASES', 'policy reload rejected; the previous policy keeps serving']), 'one log line per rejected reload')

  const events = await (await request(`${adminUrl}/events?since=0`)).body.json() as { events: Array<{ kind: string, after: string, before: string, detail: string }> }
  const rejected = events.events.filter(e => e.kind === 'policy.rejected')
  t.equal(rejected.length, 3, 'one event per rejected reload')
  t.match(rejected[0], { before: 'test', after: 'GW_ERR_POLICY_ALIASES', detail: /^GW_ERR_POLICY_ALIASES \(admin\): 1 problem\(s\), first: .*aliases expand too much.*; version test keeps serving$/ })

  const still = await request(`${url}/x`)
  t.equal(still.statusCode, 200, 'the previous policy keeps serving')
  await still.body.text()
})

t.test('a rejected reload from the file watcher is logged too', async t => {
  const a = await upstream(t, { name: 'a' })
  const good = policyYaml(route('r', '/', [{ name: 'a', url: a.url }]))
  const { file } = await startGateway(t, good)
  const logger = recordingLogger()
  const gw = await Gateway.start({ policyFile: file, watch: true, logger })
  t.teardown(async () => await gw.close())
  await writeFile(file, good.replace('version: test', 'version: bad\nx: *nowhere'))
  const end = Date.now() + 5000
  while (logger.errors.length === 0 && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 20))
  t.match(logger.errors, [{ obj: { trigger: 'file', code: 'GW_ERR_POLICY_ALIASES' }, msg: /policy reload rejected/ }])
  t.match(gw.events.since(0).filter(e => e.kind === 'policy.rejected'), [{ after: 'GW_ERR_POLICY_ALIASES', detail: /\(file\)/ }])
})
