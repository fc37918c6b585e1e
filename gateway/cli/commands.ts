/**
 * The CLI's commands, separate from the entry file so scripts (npm start)
 * and tests can call them in-process.
 */
import { readFileSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadPolicyFile } from '../policy/load.js'
import { policyWarnings } from '../policy/warnings.js'
import { formatIssue, PolicyError, type PolicyIssue } from '../policy/issues.js'
import { createLogger } from '../core/logger.js'
import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'
import { Gateway } from '../app/gateway.js'
import { Primary, WorkerStartError } from '../workers/primary.js'
import { runWorker } from '../workers/worker.js'
import { report } from './report.js'
import { ops } from './ops.js'

const USAGE = `usage:
  gateway run --policy FILE [--no-watch] [--workers N|auto]
                               start the gateway; the file is watched and reloaded on change
                               (--no-watch: only SIGHUP and POST /reload reload it);
                               --workers: N processes sharing the listeners (auto = cores);
                               SIGTERM/SIGINT drain in-flight requests and exit 0
  gateway check FILE [FILE…]   validate policy files; lists every mistake, exit 1 if any
  gateway report [ID] --policy FILE
                               the post-incident report (Markdown) of an incident
                               of the gateway running with FILE (--list: all)
  gateway status --policy FILE  routes, shares, upstream states and overrides of a running gateway
  gateway drain|pin|breaker|pause … --reason TEXT --ttl DURATION --policy FILE
                               an operator's override (gateway overrides lists them;
                               gateway status --help shows each form)
  gateway overrides [clear ID] --policy FILE
  gateway --version | --help`

const RUN_USAGE = `usage: gateway run --policy FILE [--no-watch] [--workers N|auto]

Starts the listeners and the admin API with the policy in FILE.
  -p, --policy FILE   the policy file (YAML or JSON); also --policy=FILE
  --no-watch          do not watch FILE; reload only on SIGHUP and POST /reload
  --workers N|auto    N worker processes share the listeners (auto = one per
                      core; default 1). Idempotency keys and shift shares are
                      shared by all workers (held by this process, or Redis);
                      the admin API answers for all of them
  -h, --help          print this help
An invalid policy: exit 1 with every mistake listed. SIGTERM/SIGINT drain
in-flight requests and exit 0; a second signal exits at once.`

const CHECK_USAGE = `usage: gateway check FILE [FILE…]

Validates policy files without starting anything. Lists every mistake of
every file (file:line:col path: message), exit 1 if any, 0 if all are valid.
  -h, --help          print this help`

const wantsHelp = (args: readonly string[]): boolean => args.includes('--help') || args.includes('-h')

type Out = { write: (s: string) => unknown }

/** Returns an exit code, or null when the command keeps running (run). */
export async function runCli (args: readonly string[], out: Out = process.stdout, err: Out = process.stderr): Promise<number | null> {
  const [command, ...rest] = args
  switch (command) {
    case 'check': return await check(rest, out, err)
    case 'run': return await run(rest, out, err)
    case 'report': return await report(rest, out, err)
    case 'status': case 'drain': case 'pin': case 'breaker': case 'pause': case 'overrides':
      return await ops(command, rest, out, err)
    case '--version': case '-v': {
      out.write(`${packageVersion()}\n`)
      return 0
    }
    case '--help': case '-h': case 'help':
      out.write(USAGE + '\n')
      return 0
    default:
      err.write(`gateway: ${command === undefined ? 'missing command' : `unknown command "${command}"`}\n${USAGE}\n`)
      return 2
  }
}

async function check (files: readonly string[], out: Out, err: Out): Promise<number> {
  if (wantsHelp(files)) {
    out.write(CHECK_USAGE + '\n')
    return 0
  }
  const option = files.find(f => f.startsWith('-') && f !== '-')
  if (option !== undefined) {
    err.write(`gateway check: unknown option ${option} (to check a file named so, write ./${option})\n${CHECK_USAGE}\n`)
    return 2
  }
  if (files.length === 0) {
    err.write(`gateway check: name at least one policy file\n${USAGE}\n`)
    return 2
  }
  let failed = 0
  for (const file of files) {
    const r = await loadPolicyFile(file)
    if (r.ok) {
      out.write(`ok   ${file} (version ${r.snapshot.version}, ${r.snapshot.routes.length} route${r.snapshot.routes.length === 1 ? '' : 's'})\n`)
      for (const w of policyWarnings(r.snapshot)) out.write(`  warning [${w.code}]: ${w.message}\n`)
    } else {
      failed++
      err.write(`FAIL ${file}: ${r.issues.length} problem${r.issues.length === 1 ? '' : 's'} [${r.code}]\n`)
      for (const issue of r.issues) err.write(`  ${formatIssue(issue)}\n`)
    }
  }
  return failed === 0 ? 0 : 1
}

/** --workers N|auto: a count (1..64), null when absent, or an error message. */
export function workersArg (args: readonly string[]): number | string {
  let text: string | undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    if (a === '--workers') text = args[i + 1] ?? ''
    else if (a.startsWith('--workers=')) text = a.slice('--workers='.length)
  }
  if (text === undefined) return 1
  if (text === 'auto') return Math.max(1, Math.min(64, availableParallelism()))
  const n = Number(text)
  return Number.isInteger(n) && n >= 1 && n <= 64 ? n : `--workers must be a number from 1 to 64, or auto (got ${JSON.stringify(text)})`
}

function policyArg (args: readonly string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    if (a === '--policy' || a === '-p') return args[i + 1] ?? null
    if (a.startsWith('--policy=')) return a.slice('--policy='.length)
  }
  return null
}

async function run (args: readonly string[], out: Out, err: Out): Promise<number | null> {
  if (wantsHelp(args)) {
    out.write(RUN_USAGE + '\n')
    return 0
  }
  const file = policyArg(args)
  if (file === null) {
    err.write(`gateway run: --policy FILE is required\n${USAGE}\n`)
    return 2
  }
  const workers = workersArg(args)
  if (typeof workers === 'string') {
    err.write(`gateway run: ${workers}\n${USAGE}\n`)
    return 2
  }
  const logger = createLogger()
  if (cluster.isWorker && process.env.GATEWAY_WORKER === '1') {
    process.on('unhandledRejection', err => logger.error({ err }, 'unhandled promise rejection'))
    try {
      await runWorker(file, logger)
    } catch (e) {
      // Told to the primary, which stops the others and says why; the IPC channel would keep this process alive.
      process.send?.({ t: 'failed', detail: startFailure(e, file) ?? describeFatal(e) }, () => process.exit(1))
      setTimeout(() => process.exit(1), 1000).unref()
    }
    return null
  }
  if (workers > 1) return await runPrimary(file, workers, !args.includes('--no-watch'), logger, out, err)
  // Last resort: a stray promise rejection is a bug to log, not a reason to
  // drop every request in flight (Node's default is to exit).
  process.on('unhandledRejection', err => logger.error({ err }, 'unhandled promise rejection'))
  let gw: Gateway
  try {
    gw = await Gateway.start({ policyFile: file, logger, watch: !args.includes('--no-watch') })
  } catch (e) {
    const why = startFailure(e, file)
    if (why === null) throw e
    err.write(why)
    return 1
  }
  const a = gw.addresses()
  for (const l of a.listeners) out.write(`gateway: listening on http://${hostForUrl(l.host)}:${l.port} (${l.name})\n`)
  if (a.admin !== null) out.write(`gateway: admin API on http://${hostForUrl(a.admin.host)}:${a.admin.port} (GET /status, GET /healthz, POST /reload)\n`)
  out.write(`gateway: policy ${file}, version ${gw.runtime.snapshot.version}, ${gw.runtime.snapshot.routes.length} routes\n`)

  process.on('SIGHUP', () => {
    gw.reload('signal').then(r => {
      if (!r.ok) err.write(`gateway: reload rejected [${r.code ?? ''}]\n${(r.issues ?? []).map(i => '  ' + formatIssue(i)).join('\n')}\n`)
    }, () => {})
  })
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      err.write(`gateway: ${signal} again, exiting now\n`)
      process.exit(1)
    }
    stopping = true
    out.write(`gateway: ${signal}, draining (up to ${gw.runtime.snapshot.drainTimeoutMs}ms)\n`)
    gw.close().then(() => {
      out.write('gateway: stopped\n')
      process.exit(0)
    }, e => {
      err.write(`gateway: error while stopping: ${String(e)}\n`)
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  return null
}

/** What to print when the gateway cannot start for a reason that is not a bug (null: a bug, reported as such). */
function startFailure (e: unknown, file: string): string | null {
  if (e instanceof PolicyError) return policyProblems(file, e.issues, e.code)
  const code = (e as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE' || code === 'EACCES') {
    return `gateway: cannot start: ${(e as Error).message}. Another process holds the port, or pick another in ${file}.\n`
  }
  return null
}

/** An invalid policy at start: every problem, one per line. */
function policyProblems (file: string, issues: readonly PolicyIssue[], code: string): string {
  return `gateway: cannot start, ${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'} [${code}]\n` +
    issues.map(issue => `  ${formatIssue(issue)}\n`).join('')
}

async function runPrimary (file: string, workers: number, watch: boolean, logger: ReturnType<typeof createLogger>, out: Out, err: Out): Promise<number | null> {
  const loaded = await loadPolicyFile(file)
  if (!loaded.ok) {
    err.write(policyProblems(file, loaded.issues, loaded.code))
    return 1
  }
  process.on('unhandledRejection', e => logger.error({ err: e }, 'unhandled promise rejection'))
  const primary = new Primary({
    file,
    snapshot: loaded.snapshot,
    workers,
    watch,
    logger,
    onReady: (listeners, admin) => {
      for (const l of listeners) out.write(`gateway: listening on http://${hostForUrl(l.host)}:${l.port} (${l.name}, ${workers} workers)\n`)
      if (admin !== null) out.write(`gateway: admin API on http://${hostForUrl(admin.host)}:${admin.port} (GET /status, GET /healthz, POST /reload)\n`)
      out.write(`gateway: policy ${file}, version ${loaded.snapshot.version}, ${loaded.snapshot.routes.length} routes\n`)
    }
  })
  try {
    await primary.start()
  } catch (e) {
    if (!(e instanceof WorkerStartError)) throw e
    err.write(e.message.startsWith('gateway: ') ? e.message : `gateway: cannot start: ${e.message}\n`)
    return 1
  }
  process.on('SIGHUP', () => { primary.reload('signal').catch(() => {}) })
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) process.exit(1)
    stopping = true
    out.write(`gateway: ${signal}, draining ${workers} workers (up to ${loaded.snapshot.drainTimeoutMs}ms)\n`)
    primary.stop().then(() => { out.write('gateway: stopped\n'); process.exit(0) }, () => process.exit(1))
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  return null
}

const PATH_RE = /(?:file:\/\/)?\/(?:[\w.@+-]+\/)+[\w.@+-]*/g

/**
 * The last-resort message for an exception that escaped a command (main.ts):
 * a code, the error's name and first line, with file paths cut out; never a
 * stack, unless GATEWAY_LOG_LEVEL=debug asks for one.
 */
export function describeFatal (err: unknown, debug = process.env.GATEWAY_LOG_LEVEL === 'debug'): string {
  const e = err instanceof Error ? err : null
  const first = (e?.message ?? String(err)).split('\n')[0] ?? ''
  const stack = debug && e?.stack !== undefined ? `${e.stack}\n` : ''
  return `gateway: unexpected error [GW_ERR_INTERNAL]: ${e?.name ?? 'Error'}: ${first.replace(PATH_RE, '…')}\n` +
    'This is a gateway bug; please report it (GATEWAY_LOG_LEVEL=debug prints the stack).\n' + stack
}

function hostForUrl (host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** The package.json above this file, whether run from source or from dist/. */
function packageVersion (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version
}
