/**
 * From a schema-valid document to a frozen PolicySnapshot, with the checks a
 * schema cannot express (unique names, role vs priority, routes that can
 * never match, a token variable that is not set). Pure: the environment and
 * the file identity are passed in.
 */
import { createHash } from 'node:crypto'
import { dirname, resolve as resolvePath } from 'node:path'
import { parseDuration, DURATION_PATTERN, MAX_DURATION_MS } from '../core/units.js'
import type { PolicyDoc, RouteDoc, TimeoutsDoc } from './schema.js'
import type { PolicySource } from './source.js'
import type { PolicyIssue } from './issues.js'
import { compileResilience } from './compile-resilience.js'
import { compileDelivery } from './compile-delivery.js'
import { checkUpstreamUrl } from './upstream-url.js'
import { compileUpgrade } from './compile-upgrade.js'
import { compileAdmission, compileOverload } from './compile-admission.js'
import { compileListener, compileRouteLimits } from './compile-edge.js'
import { compileStore } from './compile-store.js'
import { bulkheadPools, poolIssues, tenantCapOf } from './compile-bulkhead.js'
import { pct } from './compile-kit.js'
import { compileListenerTls } from './compile-listener-tls.js'
import { compileUpstreamTls, type ReadText, type TlsContext } from './compile-tls.js'
import { DEFAULT_TIMEOUTS, type AccessLogConfig, type PolicySnapshot, type RouteConfig, type TenantMatch, type TenantCapConfig, type TimeoutsConfig, type UpstreamConfig } from './snapshot.js'

const DURATION_RE = new RegExp(DURATION_PATTERN)

type Env = Readonly<Record<string, string | undefined>>
type Path = Array<string | number>
type TlsFiles = Omit<TlsContext, 'source' | 'issues'>

/** The reader when none is given: every TLS file is unreadable. */
const refuseRead: ReadText = () => { throw Object.assign(new Error('no file reader'), { code: 'ENOREADER' }) }

export function compilePolicy (doc: PolicyDoc, source: PolicySource, env: Env, read: ReadText = refuseRead): { ok: true, snapshot: PolicySnapshot } | { ok: false, issues: PolicyIssue[] } {
  const issues: PolicyIssue[] = []
  const duration = durationIn(source, issues)
  const listeners = doc.listeners.map((l, i) => compileListener(l, i, duration, compileListenerTls(l.tls, ['listeners', i, 'tls'], { source, issues, read })))
  checkUnique(listeners.map(l => l.name), i => ['listeners', i, 'name'], 'listener name', source, issues)
  const ports = listeners.map(l => l.port)
  if (doc.admin !== undefined) ports.push(doc.admin.port)
  ports.forEach((port, i) => {
    if (port !== 0 && ports.indexOf(port) !== i) {
      const path = i < listeners.length ? ['listeners', i, 'port'] : ['admin', 'port']
      issues.push(source.issue(path, `port ${port} is used twice; every listener and the admin API need their own port`))
    }
  })

  let admin: PolicySnapshot['admin'] = null
  if (doc.admin !== undefined) {
    const tokenEnv = doc.admin.tokenEnv ?? null
    const token = tokenEnv === null ? null : (env[tokenEnv] ?? '')
    if (tokenEnv !== null && (token === null || token.length < 8)) {
      issues.push(source.issue(['admin', 'tokenEnv'], `environment variable ${tokenEnv} must hold the admin token (at least 8 characters); it is ${token === '' ? 'not set' : 'too short'}`))
    }
    admin = { host: doc.admin.host ?? '127.0.0.1', port: doc.admin.port, token, tokenEnv }
  }

  const baseTimeouts = resolveTimeouts(doc.defaults?.timeouts, ['defaults', 'timeouts'], DEFAULT_TIMEOUTS, duration)
  const tlsFiles: TlsFiles = { read, defaults: doc.defaults?.upstreamTls }
  const routes: RouteConfig[] = []
  const names: Array<{ name: string, path: Path }> = []
  doc.routes.forEach((r, i) => {
    const own: PolicyIssue[] = []
    const cap = tenantCapOf(r, i, source, own)
    const route = compileRoute(r, i, baseTimeouts, source, own, durationIn(source, own), null, cap, tlsFiles)
    // A route's bulkhead pools are routes matched just before it.
    for (const pool of bulkheadPools(r, i, source, own)) {
      const found: PolicyIssue[] = []
      routes.push(compileRoute(pool.doc, i, baseTimeouts, pool.source, found, durationIn(pool.source, found), pool.tenant, cap, tlsFiles))
      names.push({ name: pool.doc.name, path: [...pool.namePath] })
      own.push(...poolIssues(pool, found, own))
    }
    routes.push(route)
    names.push({ name: r.name, path: ['routes', i, 'name'] })
    issues.push(...own)
  })
  checkUnique(names.map(n => n.name), i => (names[i] as { path: Path }).path, 'route name', source, issues)
  checkShadowed(routes.filter(r => r.tenant === null), source, issues)

  const statsWindowMs = duration(doc.stats?.window, ['stats', 'window'], 10_000)
  const statsResolutionMs = duration(doc.stats?.resolution, ['stats', 'resolution'], 1000)
  if (statsResolutionMs > statsWindowMs) {
    issues.push(source.issue(['stats', 'resolution'], `resolution ${statsResolutionMs}ms is longer than the window ${statsWindowMs}ms; make it a fraction of the window`))
  } else if (statsWindowMs / statsResolutionMs > 600) {
    issues.push(source.issue(['stats', 'resolution'], `the window would have ${Math.ceil(statsWindowMs / statsResolutionMs)} slots (at most 600); raise resolution or shorten window`))
  }
  const drainTimeoutMs = duration(doc.shutdown?.drainTimeout, ['shutdown', 'drainTimeout'], 10_000)
  const store = compileStore(doc.store, source, issues, duration, env)
  const accessLog = doc.accessLog === undefined ? null : compileAccessLog(doc.accessLog, source.file)
  const overload = compileOverload(doc.overload, source, issues, duration)

  if (issues.length > 0) return { ok: false, issues }
  const hash = createHash('sha256').update(source.text).digest('hex')
  const snapshot: PolicySnapshot = deepFreeze({
    version: doc.version ?? hash.slice(0, 12),
    hash,
    filesHash: createHash('sha256').update([...listeners.map(l => l.tls?.id ?? ''), ...routes.flatMap(r => r.upstreams.map(u => u.tls?.id ?? ''))].join(',')).digest('hex'),
    file: source.file,
    listeners,
    admin,
    statsWindowMs,
    statsResolutionMs,
    drainTimeoutMs,
    store,
    accessLog,
    overload,
    routes
  })
  return { ok: true, snapshot }
}

/** HTTP/2 to an upstream is negotiated by ALPN, so https:// only (undici has no h2c). */
function http2Of (on: boolean | undefined, url: URL, path: Path, source: PolicySource, issues: PolicyIssue[]): boolean {
  if (on === true && url.protocol !== 'https:') {
    issues.push(source.issue(path, 'http2 is offered through TLS (ALPN), so it applies to https:// upstreams only; this upstream is http://', true))
    return false
  }
  return on ?? false
}

/** Parses a duration, reporting a non-positive one into `issues`. */
function durationIn (source: PolicySource, issues: PolicyIssue[]) {
  return (text: string | undefined, path: Path, fallback: number): number => {
    // Compile also runs on documents that failed the schema (to report every
    // mistake in one go), so a malformed value falls back: the schema has
    // already reported it.
    if (typeof text !== 'string' || !DURATION_RE.test(text)) return fallback
    const ms = parseDuration(text)
    if (ms <= 0) issues.push(source.issue(path, `${text} is too short: a duration here must be more than 0`))
    // Above the maximum the schema's x-max has reported it (like size() in
    // compile-kit.ts); the fallback keeps absurd numbers out of the
    // cross-field checks.
    if (!(ms <= MAX_DURATION_MS)) return fallback
    return ms
  }
}

function resolveTimeouts (doc: TimeoutsDoc | undefined, path: Path, base: TimeoutsConfig, duration: (t: string | undefined, p: Path, f: number) => number): TimeoutsConfig {
  return {
    connectMs: duration(doc?.connect, [...path, 'connect'], base.connectMs),
    responseHeadersMs: duration(doc?.responseHeaders, [...path, 'responseHeaders'], base.responseHeadersMs),
    bodyIdleMs: duration(doc?.bodyIdle, [...path, 'bodyIdle'], base.bodyIdleMs),
    totalMs: duration(doc?.total, [...path, 'total'], base.totalMs),
    attemptMs: duration(doc?.attempt, [...path, 'attempt'], base.attemptMs)
  }
}

function compileRoute (r: RouteDoc, index: number, base: TimeoutsConfig, source: PolicySource, issues: PolicyIssue[], duration: (t: string | undefined, p: Path, f: number) => number, tenant: TenantMatch | null, tenantCap: TenantCapConfig | null, tls: TlsFiles): RouteConfig {
  const upstreams: UpstreamConfig[] = r.upstreams.map((u, j) => {
    if (u.role !== undefined && u.priority !== undefined) {
      issues.push(source.issue(['routes', index, 'upstreams', j, 'priority'], 'set either role or priority, not both (role: primary = priority 0, backup = priority 1)', true))
    }
    const url = upstreamUrl(u.url, ['routes', index, 'upstreams', j, 'url'], source, issues)
    return {
      name: u.name,
      key: `${r.name}/${u.name}`,
      origin: url.origin,
      basePath: url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, ''),
      hostHeader: url.host,
      clientHost: u.host === undefined ? url.protocol !== 'https:' && (r.preserveHost ?? true) : u.host === 'client',
      hostExplicit: u.host !== undefined,
      weight: u.weight ?? 1,
      priority: u.priority ?? (u.role === 'backup' ? 1 : 0),
      tls: compileUpstreamTls(url, { doc: u.tls, path: ['routes', index, 'upstreams', j, 'tls'] }, { doc: r.upstreamTls, path: ['routes', index, 'upstreamTls'] }, { ...tls, source, issues }),
      http2: http2Of(u.http2, url, ['routes', index, 'upstreams', j, 'http2'], source, issues)
    }
  })
  checkUnique(r.upstreams.map(u => u.name), j => ['routes', index, 'upstreams', j, 'name'], `route "${r.name}": upstream name`, source, issues)
  const host = r.match.host?.toLowerCase()
  return {
    name: r.name,
    index,
    pathPrefix: r.match.pathPrefix,
    host: host === undefined ? null : host.startsWith('*.') ? { suffix: host.slice(1) } : { exact: host },
    methods: r.match.methods === undefined ? null : new Set(r.match.methods.map(m => m.toUpperCase())),
    headers: r.match.headers === undefined ? null : Object.entries(r.match.headers).map(([k, v]) => [k.toLowerCase(), v] as const),
    stripPrefix: r.stripPrefix ?? false,
    preserveHost: r.preserveHost ?? true,
    timeouts: resolveTimeouts(r.timeouts, ['routes', index, 'timeouts'], base, duration),
    ...compileRouteLimits(r),
    ...compileResilience(r, index, source, issues, duration),
    ...compileDelivery(r, index, source, issues, duration),
    ...compileUpgrade(r, index, source, issues, duration),
    ...compileAdmission(r, index, duration, source, issues),
    tenant,
    tenantCap,
    upstreams: upstreams.map((u, order) => ({ u, order }))
      .sort((a, b) => a.u.priority - b.u.priority || a.order - b.order)
      .map(x => x.u)
  }
}

/** The parsed URL, or a placeholder after reporting what is wrong with it. */
function upstreamUrl (text: unknown, path: Path, source: PolicySource, issues: PolicyIssue[]): URL {
  // Not a string: the schema has reported it.
  const checked = typeof text === 'string' ? checkUpstreamUrl(text) : null
  if (checked?.ok === true) return checked.url
  if (checked !== null) issues.push(source.issue(path, checked.message))
  return new URL('http://invalid.invalid')
}

function checkUnique (names: readonly string[], pathOf: (i: number) => Path, what: string, source: PolicySource, issues: PolicyIssue[]): void {
  names.forEach((name, i) => {
    const first = names.indexOf(name)
    if (first !== i) issues.push(source.issue(pathOf(i), `${what} "${name}" is already used at line ${source.locate(pathOf(first)).line}; names must be unique`))
  })
}

/** A route every request of which an earlier route already takes is a mistake. */
function checkShadowed (routes: readonly RouteConfig[], source: PolicySource, issues: PolicyIssue[]): void {
  for (const later of routes) {
    for (const earlier of routes) {
      if (earlier.index >= later.index) break
      if (covers(earlier, later)) {
        issues.push(source.issue(['routes', later.index, 'match'],
          `route "${later.name}" can never match: route "${earlier.name}" (pathPrefix ${earlier.pathPrefix}) comes first and takes all its requests; move "${later.name}" above it or narrow "${earlier.name}"`))
        break
      }
    }
  }
}

function covers (a: RouteConfig, b: RouteConfig): boolean {
  if (!b.pathPrefix.startsWith(a.pathPrefix)) return false
  if (a.host !== null && JSON.stringify(a.host) !== JSON.stringify(b.host)) return false
  if (a.methods !== null && (b.methods === null || [...b.methods].some(m => !a.methods?.has(m)))) return false
  if (a.headers !== null && a.headers.some(([k, v]) => !(b.headers ?? []).some(([k2, v2]) => k === k2 && v === v2))) return false
  return true
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value) && !(value instanceof Set)) {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

/** accessLog: a file relative to the policy file's folder; stdout/stderr as they are. */
function compileAccessLog (doc: NonNullable<PolicyDoc['accessLog']>, file: string): AccessLogConfig {
  const dest = doc.destination ?? 'stdout'
  const destination = dest === 'stdout' || dest === 'stderr' ? dest : resolvePath(dirname(file), dest)
  return { destination, sampleRatio: pct(doc.sample, 1) }
}
