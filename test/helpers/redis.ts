/**
 * A real redis-server for tests: own temp dir, loopback only, no persistence,
 * killed in t.teardown. `stop()` SIGKILLs it (a crash, not a shutdown) and
 * `start()` brings it back, empty, on the same port; `pause()`/`resume()`
 * SIGSTOP/SIGCONT it (a hung server: connections stay open, nothing answers).
 *
 * redis-server must be installed (REDIS_SERVER or /usr/bin/redis-server): the
 * tests fail with a clear error when it is not, they are never skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { closedPort } from './net.js'

export interface Teardown { teardown (fn: () => unknown): void }

export interface RedisServer {
  readonly port: number
  /** redis://127.0.0.1:<port> */
  readonly url: string
  /** SIGKILL, then wait for the process to exit. */
  stop (): Promise<void>
  /** Start again on the same port (empty: nothing is saved) and wait until it answers PING. */
  start (): Promise<void>
  /** SIGSTOP: the server hangs with its connections open. */
  pause (): void
  /** SIGCONT after pause(). */
  resume (): void
}

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server'

function requireBinary (): void {
  try {
    accessSync(REDIS_SERVER, constants.X_OK)
  } catch {
    throw new Error(`redis-server not found at ${REDIS_SERVER}: the Redis tests need a real server (apt-get install redis-server, or set REDIS_SERVER to its path)`)
  }
}

export interface StartRedisOptions {
  /** Extra redis-server arguments, e.g. ['--cluster-enabled', 'yes']. */
  readonly args?: readonly string[]
}

/** Starts redis-server on a free loopback port. */
export async function startRedis (t: Teardown, opts: StartRedisOptions = {}): Promise<RedisServer> {
  requireBinary()
  const dir = await mkdtemp(join(tmpdir(), 'gw-redis-'))
  return await launch(t, dir, port => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(opts.args ?? [])])
}

/** Starts a Redis Sentinel watching the master at 127.0.0.1:`masterPort` as `name` (quorum 1). */
export async function startSentinel (t: Teardown, masterPort: number, name: string): Promise<RedisServer> {
  requireBinary()
  const dir = await mkdtemp(join(tmpdir(), 'gw-sentinel-'))
  const conf = join(dir, 'sentinel.conf')
  return await launch(t, dir, () => [conf, '--sentinel'], async port => {
    // Sentinel rewrites its config file, so it gets a fresh one per start.
    await writeFile(conf, [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${name} 60000`,
      ''
    ].join('\n'))
  })
}

async function launch (
  t: Teardown,
  dir: string,
  argv: (port: number) => string[],
  prepare?: (port: number) => Promise<void>
): Promise<RedisServer> {
  let child: ChildProcess | null = null
  let output = ''
  let port = 0

  const spawnOn = async (p: number): Promise<void> => {
    await prepare?.(p)
    const args = argv(p)
    output = ''
    const c = spawn(REDIS_SERVER, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-4000) }
    c.stdout?.on('data', keep)
    c.stderr?.on('data', keep)
    const exited = new Promise<never>((_resolve, reject) => {
      c.once('exit', (code, signal) => { reject(new Error(`redis-server exited (${signal ?? code}) before answering PING on port ${p}:\n${output}`)) })
      c.once('error', reject)
    })
    exited.catch(() => {})
    await Promise.race([waitForPing(p, 10_000), exited])
  }

  // A free port can be taken between closedPort() and the bind: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await closedPort()
    try {
      await spawnOn(port)
      break
    } catch (err) {
      await kill(child)
      if (attempt >= 3) throw err
    }
  }

  const killOnExit = (): void => { (child as ChildProcess | null)?.kill('SIGKILL') }
  process.once('exit', killOnExit)
  t.teardown(async () => {
    process.removeListener('exit', killOnExit)
    await kill(child)
    await rm(dir, { recursive: true, force: true })
  })

  return {
    get port () { return port },
    get url () { return `redis://127.0.0.1:${port}` },
    async stop () {
      await kill(child)
      child = null
    },
    async start () {
      if (child !== null) throw new Error('redis-server is already running')
      await spawnOn(port)
    },
    pause () { (child as ChildProcess | null)?.kill('SIGSTOP') },
    resume () { (child as ChildProcess | null)?.kill('SIGCONT') }
  }
}

async function kill (c: ChildProcess | null): Promise<void> {
  if (c === null || c.exitCode !== null || c.signalCode !== null) return
  const exited = new Promise<void>(resolve => c.once('exit', () => resolve()))
  c.kill('SIGKILL')
  await exited
}

/** Resolves once a plain socket gets +PONG for PING; retries until `ms` have passed. */
export async function waitForPing (port: number, ms: number): Promise<void> {
  const until = Date.now() + ms
  for (;;) {
    if (await pingOnce(port)) return
    if (Date.now() > until) throw new Error(`nothing answered PING on 127.0.0.1:${port} within ${ms} ms`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

async function pingOnce (port: number): Promise<boolean> {
  return await new Promise<boolean>(resolve => {
    const socket = connect({ host: '127.0.0.1', port })
    let data = ''
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.on('data', chunk => {
      data += chunk.toString('latin1')
      if (data.includes('\r\n')) done(data.startsWith('+PONG'))
    })
  })
}
