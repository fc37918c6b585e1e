/**
 * For the benches that run the built gateway as its own process
 * (overload-bench.ts, tenant-bench.ts): a slot-limited origin, the CLI
 * gateway pinned to CPU 0, and a process's resident memory.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { readFile } from 'node:fs/promises'

/**
 * A service with `slots` requests served at once, each taking `serviceMs`
 * (capacity = slots / service time); requests beyond the slots queue in it.
 */
export async function startSlotOrigin (slots: number, serviceMs: number): Promise<{ port: number, served: () => number, close: () => Promise<void> }> {
  let busy = 0
  let served = 0
  const queue: Array<() => void> = []
  const server: Server = createServer((req, res) => {
    req.resume()
    const serve = (): void => {
      busy++
      setTimeout(() => {
        res.end('{"ok":true}')
        busy--
        served++
        queue.shift()?.()
      }, serviceMs)
    }
    if (busy < slots) serve()
    else queue.push(serve)
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return { port, served: () => served, close: async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) } }
}

/** `gateway run --policy FILE` from dist/, pinned to CPU 0; resolves once it listens. */
export async function startCliGateway (file: string): Promise<ChildProcess> {
  const child = spawn('taskset', ['-c', '0', process.execPath, 'dist/gateway/cli/main.js', 'run', '--policy', file, '--no-watch'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GATEWAY_LOG_LEVEL: 'error' } })
  let out = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { out += c.toString() })
  const end = Date.now() + 20_000
  while (!/listening on/.test(out)) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`gateway did not start: ${out.slice(0, 500)}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return child
}

export async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  child.kill('SIGTERM')
  await new Promise(resolve => child.once('exit', resolve))
}

/** The start of a bench policy: its version, one public listener (room for a flood's connections) and the admin API. */
export function policyHead (version: string, port: number, adminPort: number): string {
  return `version: ${version}
listeners:
  - name: public
    host: 127.0.0.1
    port: ${port}
    limits: { maxConnections: 10000 }
admin:
  host: 127.0.0.1
  port: ${adminPort}
`
}

export async function rssMb (pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8')
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024)
}
