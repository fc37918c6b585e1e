/**
 * Every shipped policy file (policies/*.yaml) loads and passes
 * `gateway check`; a deliberately broken copy fails with every mistake listed
 * at its own `file:line:column path:`, by `gateway check` and `gateway run`.
 */
import t from 'tap'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadPolicyFile } from '../gateway/policy/load.js'
import { runCli } from '../gateway/cli/commands.js'

const TOKEN_ENV = { GATEWAY_ADMIN_TOKEN: 'test-token-123456' }
// `gateway check`/`run` read process.env (example-payments.yaml names this
// variable in admin.tokenEnv); keep the logger of `run` quiet.
Object.assign(process.env, TOKEN_ENV, { GATEWAY_LOG_LEVEL: 'silent' })

const POLICIES = fileURLToPath(new URL('../policies/', import.meta.url))
const policyFiles = readdirSync(POLICIES).filter(f => /\.ya?ml$/.test(f)).sort().map(f => join(POLICIES, f))

/** A writer for runCli that keeps what it is given. */
function capture (): { write: (s: string) => boolean, text: () => string } {
  let buf = ''
  return { write: (s: string) => { buf += s; return true }, text: () => buf }
}

t.test('the shipped policies are found', async t => {
  const names = policyFiles.map(f => f.slice(POLICIES.length))
  t.ok(names.includes('default.yaml'), 'default.yaml')
  t.ok(names.includes('example-payments.yaml'), 'example-payments.yaml')
})

for (const file of policyFiles) {
  const name = file.slice(POLICIES.length)
  t.test(`policies/${name} is valid`, async t => {
    const r = await loadPolicyFile(file, TOKEN_ENV)
    t.ok(r.ok, r.ok ? 'loads' : `loads, but got:\n${JSON.stringify(r.issues, null, 2)}`)

    const out = capture()
    const err = capture()
    const code = await runCli(['check', file], out, err)
    t.equal(code, 0, `gateway check exits 0${err.text() === '' ? '' : `; stderr:\n${err.text()}`}`)
    t.match(out.text(), /^ok {3}/, 'prints ok')
    t.equal(err.text(), '', 'nothing on stderr')
  })
}

t.test('example-payments.yaml uses every option', async t => {
  const r = await loadPolicyFile(join(POLICIES, 'example-payments.yaml'), TOKEN_ENV)
  if (!r.ok) return t.fail('does not load')
  const s = r.snapshot
  t.ok(s.listeners.some(l => l.trustForwarded), 'a listener trusts forwarded headers')
  t.equal(s.admin?.tokenEnv, 'GATEWAY_ADMIN_TOKEN', 'admin.tokenEnv')
  t.equal(s.admin?.token, TOKEN_ENV.GATEWAY_ADMIN_TOKEN, 'token read from the environment')
  t.ok(s.routes.some(r => r.host !== null && 'suffix' in r.host), 'a wildcard host route')
  t.ok(s.routes.some(r => r.host !== null && 'exact' in r.host), 'an exact host route')
  t.ok(s.routes.some(r => r.methods !== null), 'a route with methods')
  t.ok(s.routes.some(r => r.headers !== null), 'a route with headers')
  t.ok(s.routes.some(r => r.stripPrefix), 'stripPrefix')
  t.ok(s.routes.some(r => !r.preserveHost), 'preserveHost: false')
  t.ok(s.routes.some(r => r.timeouts.totalMs > 0), 'a total timeout')
  const ups = s.routes.flatMap(r => r.upstreams)
  t.ok(ups.some(u => u.basePath !== ''), 'an upstream URL with a base path')
  t.ok(ups.some(u => u.weight === 0), 'a drained upstream (weight 0)')
  t.ok(ups.some(u => u.weight > 1), 'a weighted upstream')
  t.ok(ups.some(u => u.priority === 1), 'a backup')
  t.ok(ups.some(u => u.priority > 1), 'a numeric priority level')
  t.equal(s.accessLog?.destination, join(POLICIES, 'logs', 'access.log'), 'an access log file, relative to the policy file')
  t.equal(s.accessLog?.sampleRatio, 0.1, 'sampled')
})

// One mistake per line; `at` is the text the issue must point at (its column).
const BROKEN = [
  /*  1 */ 'version: broken-example',
  /*  2 */ 'listeners:',
  /*  3 */ '  - name: public',
  /*  4 */ '    port: 18080',
  /*  5 */ 'routes:',
  /*  6 */ '  - name: payments',
  /*  7 */ '    match:',
  /*  8 */ '      pathPrefix: /pay/',
  /*  9 */ '    stripPrefx: true',
  /* 10 */ '    timeouts:',
  /* 11 */ '      connect: 5 seconds',
  /* 12 */ '    upstreams:',
  /* 13 */ '      - name: pay-primary',
  /* 14 */ '        url: http://127.0.0.1:9101',
  /* 15 */ '      - name: pay-primary',
  /* 16 */ '        url: 127.0.0.1:9102',
  /* 17 */ '        role: backup',
  /* 18 */ '        priority: 1',
  /* 19 */ '  - name: card-payments',
  /* 20 */ '    match:',
  /* 21 */ '      pathPrefix: /pay/card/',
  /* 22 */ '    upstreams:',
  /* 23 */ '      - name: card',
  /* 24 */ '        url: http://127.0.0.1:9103',
  ''
]

const MISTAKES = [
  { what: 'unknown key with a typo', line: 9, at: 'stripPrefx', path: 'routes[0].stripPrefx', message: /unknown key "stripPrefx"\. Did you mean "stripPrefix"\?/ },
  { what: 'bad duration', line: 11, at: '5 seconds', path: 'routes[0].timeouts.connect', message: /"5 seconds" is not valid \(write a duration/ },
  { what: 'duplicate upstream name', line: 15, at: 'pay-primary', path: 'routes[0].upstreams[1].name', message: /route "payments": upstream name "pay-primary" is already used at line 13/ },
  { what: 'bad URL', line: 16, at: '127.0.0.1:9102', path: 'routes[0].upstreams[1].url', message: /"127\.0\.0\.1:9102" is not valid \(write a URL/ },
  { what: 'role and priority both set', line: 18, at: 'priority', path: 'routes[0].upstreams[1].priority', message: /set either role or priority, not both/ },
  { what: 'shadowed route', line: 21, at: 'pathPrefix', path: 'routes[1].match', message: /route "card-payments" can never match: route "payments"/ }
] as const

t.test('a broken policy lists every mistake at its line', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-policy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'broken.yaml')
  writeFileSync(file, BROKEN.join('\n'))

  const expected = MISTAKES.map(m => {
    const text = BROKEN[m.line - 1] as string
    const column = text.indexOf(m.at) + 1
    t.ok(column > 0, `line ${m.line} holds ${m.at}`)
    return { ...m, prefix: `${file}:${m.line}:${column} ${m.path}: ` }
  })
  const issueLines = (stderr: string): string[] => stderr.split('\n').filter(l => l.startsWith('  ')).map(l => l.slice(2))

  const out = capture()
  const err = capture()
  t.equal(await runCli(['check', file], out, err), 1, 'gateway check exits 1')
  t.equal(out.text(), '', 'nothing on stdout')
  t.match(err.text(), new RegExp(`^FAIL ${escapeRe(file)}: ${MISTAKES.length} problems \\[GW_ERR_POLICY_INVALID\\]\\n`), 'names the file, the count and the code')
  const checkLines = issueLines(err.text())
  t.equal(checkLines.length, MISTAKES.length, `one line per mistake:\n${err.text()}`)
  for (const m of expected) {
    const line = checkLines.find(l => l.startsWith(m.prefix))
    t.ok(line !== undefined, `${m.what}: a line starts with "${m.prefix}"\n${err.text()}`)
    if (line !== undefined) t.match(line.slice(m.prefix.length), m.message, `${m.what}: message`)
  }
  t.same(checkLines.map(l => Number(l.slice(file.length + 1).split(':')[0])), MISTAKES.map(m => m.line), 'listed in line order')

  const runOut = capture()
  const runErr = capture()
  t.equal(await runCli(['run', '--policy', file], runOut, runErr), 1, 'gateway run exits 1')
  t.match(runErr.text(), new RegExp(`^gateway: cannot start, ${escapeRe(file)}: ${MISTAKES.length} problems \\[GW_ERR_POLICY_INVALID\\]\\n`))
  t.same(issueLines(runErr.text()), checkLines, 'gateway run lists the same issue lines')
  t.equal(runOut.text(), '', 'run printed nothing on stdout (it did not start)')
})

function escapeRe (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
