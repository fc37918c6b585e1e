/** Compiles the store block: memory by default; Redis with exactly one way to reach it and its password from the environment. */
import type { PolicyDoc } from './schema.js'
import type { PolicySource } from './source.js'
import type { PolicyIssue } from './issues.js'
import type { DurationFn } from './compile-kit.js'
import type { RedisConfig, StoreConfig } from './snapshot.js'

type Env = Readonly<Record<string, string | undefined>>

export function compileStore (doc: PolicyDoc['store'], source: PolicySource, issues: PolicyIssue[], duration: DurationFn, env: Env): StoreConfig {
  const syncIntervalMs = duration(doc?.fleet?.syncInterval, ['store', 'fleet', 'syncInterval'], 100)
  const staleAfterMs = duration(doc?.fleet?.staleAfter, ['store', 'fleet', 'staleAfter'], 1500)
  if (staleAfterMs < 2 * syncIntervalMs) issues.push(source.issue(['store', 'fleet', 'staleAfter'], `staleAfter (${staleAfterMs}ms) must be at least twice syncInterval (${syncIntervalMs}ms), or one late message makes a peer vanish`))
  const r = doc?.redis
  if (r === undefined) return { redis: null, syncIntervalMs, staleAfterMs }
  const ways = [r.url !== undefined, r.sentinels !== undefined, r.cluster !== undefined].filter(Boolean).length
  if (ways !== 1) issues.push(source.issue(['store', 'redis'], `give exactly one of url, sentinels (with name) or cluster; ${ways === 0 ? 'none is' : `${ways} are`} given`))
  if (r.sentinels !== undefined && r.name === undefined) issues.push(source.issue(['store', 'redis', 'name'], 'sentinels need the name of the master set (name)'))
  if (r.name !== undefined && r.sentinels === undefined) issues.push(source.issue(['store', 'redis', 'name'], 'name is the Sentinel master set name; it needs sentinels'))
  const passwordEnv = r.passwordEnv ?? null
  const password = passwordEnv === null ? null : (env[passwordEnv] ?? '')
  if (passwordEnv !== null && password === '') issues.push(source.issue(['store', 'redis', 'passwordEnv'], `environment variable ${passwordEnv} must hold the Redis password; it is not set`))
  const redis: RedisConfig = {
    url: r.url ?? null,
    sentinels: r.sentinels?.map(hostPort) ?? null,
    name: r.name ?? null,
    cluster: r.cluster?.map(hostPort) ?? null,
    password,
    passwordEnv,
    keyPrefix: r.keyPrefix ?? 'gw:',
    commandTimeoutMs: duration(r.commandTimeout, ['store', 'redis', 'commandTimeout'], 250),
    connectTimeoutMs: duration(r.connectTimeout, ['store', 'redis', 'connectTimeout'], 1000),
    maxBackoffMs: duration(r.maxBackoff, ['store', 'redis', 'maxBackoff'], 2000)
  }
  return { redis, syncIntervalMs, staleAfterMs }
}

function hostPort (text: string): { host: string, port: number } {
  const i = text.lastIndexOf(':')
  const host = text.slice(0, i)
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(text.slice(i + 1)) }
}
