/**
 * `gateway run --help` and `gateway check --help` print the command's usage
 * and exit 0 instead of taking `--help` for a file name; an unknown option to
 * `check` is a usage error; an exception that escapes a command is reported
 * with a code, never with a stack or the gateway's own file paths.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { runCli, describeFatal } from '../gateway/cli/commands.js'

/** A writer for runCli that keeps what it is given. */
function capture (): { write: (s: string) => boolean, text: () => string } {
  let buf = ''
  return { write: (s: string) => { buf += s; return true }, text: () => buf }
}

async function cli (args: string[]): Promise<{ code: number | null, out: string, err: string }> {
  const out = capture()
  const err = capture()
  const code = await runCli(args, out, err)
  return { code, out: out.text(), err: err.text() }
}

for (const args of [['check', '--help'], ['check', '-h'], ['check', 'policies/default.yaml', '--help']]) {
  t.test(`gateway ${args.join(' ')} prints the usage of check`, async t => {
    const r = await cli(args)
    t.equal(r.code, 0, 'exit 0')
    t.match(r.out, /^usage: gateway check FILE \[FILE…\]\n/)
    t.match(r.out, /exit 1 if any/)
    t.equal(r.err, '', 'nothing on stderr (no file was read)')
  })
}

for (const args of [['run', '--help'], ['run', '-h'], ['run', '--policy', 'policies/default.yaml', '--help'], ['run', '--policy', '--help']]) {
  t.test(`gateway ${args.join(' ')} prints the usage of run`, async t => {
    const r = await cli(args)
    t.equal(r.code, 0, 'exit 0 (and nothing started: the code is not null)')
    t.match(r.out, /^usage: gateway run --policy FILE \[--no-watch\] \[--workers N\|auto\]\n/)
    t.match(r.out, /--no-watch/)
    t.match(r.out, /--workers N\|auto/)
    t.equal(r.err, '', 'nothing on stderr')
  })
}

t.test('an unknown option to check is a usage error, not a file name', async t => {
  const r = await cli(['check', '--verbose'])
  t.equal(r.code, 2)
  t.match(r.err, /^gateway check: unknown option --verbose \(to check a file named so, write \.\/--verbose\)\nusage: gateway check/)
  t.equal(r.out, '')
})

t.test('an escaped exception is reported with a code, without a stack or paths', async t => {
  const err = new Error("Cannot find module '/work/main/gateway/policy/gone.js' imported from /work/main/gateway/cli/commands.ts\nmore detail")
  const text = describeFatal(err, false)
  t.match(text, /^gateway: unexpected error \[GW_ERR_INTERNAL\]: Error: Cannot find module '…' imported from …\n/)
  t.notMatch(text, /\/work\//, 'no internal paths')
  t.notMatch(text, /^\s*at /m, 'no stack frames')
  t.notMatch(text, /more detail/, 'first line only')
  t.match(text, /GATEWAY_LOG_LEVEL=debug/, 'says how to get the stack')
  t.match(describeFatal(err, true), /^\s+at /m, 'the stack on request')
  t.match(describeFatal('a string', false), /\[GW_ERR_INTERNAL\]: Error: a string\n/)
})

t.test('the real entry point: check --help exits 0', async t => {
  const main = fileURLToPath(new URL('../gateway/cli/main.ts', import.meta.url))
  const r = spawnSync(process.execPath, ['--import', 'tsx', main, 'check', '--help'], { encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^usage: gateway check/)
  t.equal(r.stderr, '')
})

t.test('gateway run --workers with a bad count is a usage error (exit 2), nothing started', async t => {
  for (const bad of ['0', 'two', '65', '']) {
    const r = await cli(['run', '--policy', 'policies/default.yaml', '--workers', bad])
    t.equal(r.code, 2, `--workers ${JSON.stringify(bad)}: exit 2`)
    t.match(r.err, /--workers must be a number from 1 to 64, or auto/)
  }
})
