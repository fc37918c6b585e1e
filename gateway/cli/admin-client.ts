/**
 * How the CLI's operator commands (report, status, drain, pin, …) reach a
 * running gateway: its admin address and token come from the policy file it
 * runs with (and the environment, for admin.tokenEnv).
 */
import { request } from 'undici'
import { loadPolicyFile } from '../policy/load.js'

export type Out = { write: (s: string) => unknown }

export interface AdminClient {
  readonly base: string
  /** GET, POST or DELETE a JSON admin endpoint; the status and the parsed body (text when not JSON). */
  call (method: 'GET' | 'POST' | 'DELETE', path: string, body?: object): Promise<{ status: number, body: any }>
}

/** The admin API of the gateway running with `file`, or what to print (and exit 1) when there is none. */
export async function adminClient (file: string, command: string): Promise<AdminClient | string> {
  const loaded = await loadPolicyFile(file)
  if (!loaded.ok) return `gateway ${command}: ${file} is not a valid policy [${loaded.code}] (gateway check ${file} says why)`
  const admin = loaded.snapshot.admin
  if (admin === null || admin.port === 0) return `gateway ${command}: ${file} has no admin block with a fixed port; the command talks to the admin API`
  const host = admin.host === '0.0.0.0' || admin.host === '::' ? '127.0.0.1' : admin.host
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${admin.port}`
  const auth: Record<string, string> = admin.token === null ? {} : { authorization: `Bearer ${admin.token}` }
  return {
    base,
    call: async (method, path, body) => {
      const headers = body === undefined ? auth : { ...auth, 'content-type': 'application/json' }
      const res = await request(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
      const text = await res.body.text()
      let parsed: unknown = text
      if (/json/.test(String(res.headers['content-type'] ?? ''))) {
        try { parsed = JSON.parse(text) } catch { parsed = text }
      }
      return { status: res.statusCode, body: parsed }
    }
  }
}

/** The `--policy FILE` of args and the rest, or null when it is missing. */
export function takePolicy (args: readonly string[]): { file: string | null, rest: string[] } {
  let file: string | null = null
  const rest: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    if (a === '--policy' || a === '-p') file = args[++i] ?? null
    else if (a.startsWith('--policy=')) file = a.slice('--policy='.length)
    else rest.push(a)
  }
  return { file, rest }
}

/** What an unreachable admin API or a refused call means, in one line. */
export function unreachable (command: string, base: string, file: string, e: unknown): string {
  return `gateway ${command}: cannot reach the admin API at ${base} (${(e as NodeJS.ErrnoException).code ?? 'error'}); is the gateway running with ${file}?`
}

export function refused (command: string, status: number, body: any): string {
  if (status === 401) return `gateway ${command}: the admin API answered 401 (wrong or missing token: set the variable named by admin.tokenEnv)`
  const code = typeof body === 'object' && body !== null ? ` ${String(body.code ?? '')}` : ''
  const detail = typeof body === 'object' && body !== null && typeof body.detail === 'string' ? `: ${body.detail}` : ''
  return `gateway ${command}: the admin API answered ${status}${code}${detail}`
}
