/**
 * One Redis connection for the fleet (shared state between gateway
 * instances): a standalone server by URL, a Sentinel-managed master, or a
 * Cluster. Exactly one of the three is configured; no config at all means the
 * fleet features run in memory and this file is never used.
 *
 * Failure behaviour, chosen for a data plane that must answer quickly:
 * - no offline queue: while disconnected every command fails at once instead
 *   of piling up in memory and running late (a late idempotency claim is
 *   worse than a refused one);
 * - every command is bounded by `commandTimeoutMs`, connecting by
 *   `connectTimeoutMs`;
 * - reconnecting never stops (capped exponential backoff with full jitter), so
 *   a Redis restart heals on its own without recreating anything;
 * - ioredis 'error' events are swallowed into `onState` (an unhandled 'error'
 *   event would crash the process); the details passed on never hold an
 *   address, a URL or a password.
 *
 * Keys are not prefixed by ioredis (no `keyPrefix` option): users prefix their
 * keys themselves, so the keys a Lua script touches are explicit in KEYS.
 */
import { Redis, Cluster, type RedisOptions, type ClusterOptions } from 'ioredis'

export interface RedisConnectionConfig {
  /** redis:// or rediss:// URL of a standalone server (may carry credentials: never logged). */
  readonly url: string | null
  /** Sentinels to ask for the master named `name`. */
  readonly sentinels: ReadonlyArray<{ readonly host: string, readonly port: number }> | null
  /** The Sentinel master name; set together with `sentinels`. */
  readonly name: string | null
  /** Startup nodes of a Redis Cluster. */
  readonly cluster: ReadonlyArray<{ readonly host: string, readonly port: number }> | null
  /** Prefix for every key and channel (applied by the users of the handle, not by ioredis). */
  readonly keyPrefix: string
  /** Password of the data nodes (overrides one in the URL). */
  readonly password: string | null
  readonly commandTimeoutMs: number
  readonly connectTimeoutMs: number
  /** Longest pause between reconnect attempts. */
  readonly maxBackoffMs: number
}

export type RedisState = 'up' | 'down'

export interface RedisHandle {
  /** For commands. Fails fast while disconnected (no offline queue). */
  readonly client: Redis | Cluster
  /** A second connection for pub/sub (a subscribed connection cannot run commands), created on first use. */
  subscriber (): Redis | Cluster
  /** True while `client` is connected and ready. */
  readonly up: boolean
  /** Closes both connections; pending commands fail. */
  close (): Promise<void>
}

/** First reconnect delay ceiling; it doubles per attempt up to maxBackoffMs. */
const BACKOFF_BASE_MS = 50

/**
 * Capped exponential backoff with full jitter: a uniform delay in
 * [1, min(maxBackoffMs, 50 ms * 2^(attempt-1))]. Always a number (ioredis stops
 * reconnecting when a retry strategy returns anything else), and never 0 so a
 * refused connection cannot spin.
 */
export function backoffDelay (attempt: number, maxBackoffMs: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30)
  const ceiling = Math.max(1, Math.min(maxBackoffMs, BACKOFF_BASE_MS * 2 ** exponent))
  return Math.max(1, Math.floor(random() * ceiling))
}

/** Throws a RangeError naming the first problem; messages never repeat the URL or password. */
export function validateRedisConfig (cfg: RedisConnectionConfig): void {
  const modes = [cfg.url !== null, cfg.sentinels !== null, cfg.cluster !== null].filter(Boolean).length
  if (modes !== 1) throw new RangeError(`exactly one of url, sentinels (with name) or cluster must be set, got ${modes}`)
  if (cfg.url !== null && !/^rediss?:\/\/[^\s]+$/i.test(cfg.url)) throw new RangeError('url must be a redis:// or rediss:// URL')
  if (cfg.url !== null) {
    // ioredis would throw Node's "Invalid URL" error, which carries the URL (and its password) as `input`.
    try { void new URL(cfg.url) } catch { throw new RangeError('url is not a valid URL') }
  }
  if (cfg.sentinels !== null && (cfg.name === null || cfg.name === '')) throw new RangeError('sentinels need the master name')
  if (cfg.sentinels === null && cfg.name !== null) throw new RangeError('name is only used with sentinels')
  for (const [what, nodes] of [['sentinels', cfg.sentinels], ['cluster', cfg.cluster]] as const) {
    if (nodes === null) continue
    if (nodes.length === 0) throw new RangeError(`${what} must list at least one node`)
    for (const n of nodes) {
      if (typeof n.host !== 'string' || n.host === '' || !Number.isInteger(n.port) || n.port < 1 || n.port > 65535) {
        throw new RangeError(`${what} nodes need a host and a port 1-65535`)
      }
    }
  }
  for (const key of ['commandTimeoutMs', 'connectTimeoutMs', 'maxBackoffMs'] as const) {
    if (!(Number.isFinite(cfg[key]) && cfg[key] > 0)) throw new RangeError(`${key} must be > 0, got ${cfg[key]}`)
  }
}

/**
 * A short, safe description of a driver error: an error code or a fixed
 * phrase, never the message of a socket error (it holds the address).
 */
export function redisErrorDetail (err: unknown): string {
  if (!(err instanceof Error)) return 'unexpected error'
  const message = err.message
  if (message === 'Command timed out') return 'the command timed out'
  if (message.includes('enableOfflineQueue')) return 'not connected'
  if (err.name === 'MaxRetriesPerRequestError') return 'the connection was lost with the command in flight'
  if (message === 'Connection is closed.' || err.name === 'AbortError') return 'connection closed'
  if (message.startsWith('All sentinels are unreachable')) return 'no sentinel reachable'
  if (err.name === 'ClusterAllFailedError') return 'no cluster node reachable'
  if (message.startsWith('Ready check failed')) return 'ready check failed'
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && /^[A-Z0-9_]{2,32}$/.test(code)) return `connection failed (${code})`
  if (err.name === 'ReplyError') {
    // Redis error replies start with an upper-case code (ERR, NOAUTH, WRONGPASS,
    // OOM, READONLY, LOADING, MOVED...); the rest may hold addresses (MOVED) or key names.
    const first = /^[A-Z][A-Z_-]{1,31}\b/.exec(message)
    return first === null ? 'the server refused the command' : `the server replied ${first[0]}`
  }
  return 'unexpected error'
}

function commonOptions (cfg: RedisConnectionConfig): RedisOptions {
  return {
    enableOfflineQueue: false,
    commandTimeout: cfg.commandTimeoutMs,
    connectTimeout: cfg.connectTimeoutMs,
    // 0, not 1: a command whose connection drops is failed at once, never re-sent
    // after the reconnect. A Lua script may already have run when the reply was
    // lost; re-sending begin would find our own claim and answer "in flight" to
    // its owner, and any re-send would land up to a backoff later than its caller
    // expects. The caller gets a StoreUnavailableError and decides.
    maxRetriesPerRequest: 0,
    // Don't keep unanswered commands to re-send after a reconnect either (same reason).
    autoResendUnfulfilledCommands: false,
    enableReadyCheck: true,
    // A master demoted by a failover answers writes with READONLY: reconnect (via
    // Sentinel, to the new master); the failed command itself is not re-sent (1, not 2).
    reconnectOnError: err => err.message.startsWith('READONLY') ? 1 : false,
    retryStrategy: times => backoffDelay(times, cfg.maxBackoffMs),
    ...(cfg.password === null ? {} : { password: cfg.password })
  }
}

function createClient (cfg: RedisConnectionConfig): Redis | Cluster {
  const common = commonOptions(cfg)
  if (cfg.url !== null) return new Redis(cfg.url, common)
  if (cfg.sentinels !== null) {
    return new Redis({
      ...common,
      sentinels: cfg.sentinels.map(s => ({ host: s.host, port: s.port })),
      name: cfg.name ?? '',
      sentinelCommandTimeout: cfg.commandTimeoutMs,
      // Also forever: when every sentinel is down, keep asking.
      sentinelRetryStrategy: times => backoffDelay(times, cfg.maxBackoffMs)
    })
  }
  const nodes = (cfg.cluster ?? []).map(n => ({ host: n.host, port: n.port }))
  const { retryStrategy: _nodeRetry, enableOfflineQueue: _nodeQueue, ...redisOptions } = common
  const options: ClusterOptions = {
    enableOfflineQueue: false,
    enableReadyCheck: true,
    clusterRetryStrategy: times => backoffDelay(times, cfg.maxBackoffMs),
    slotsRefreshTimeout: cfg.connectTimeoutMs,
    redisOptions
  }
  return new Cluster(nodes, options)
}

/**
 * Connects (in the background: the handle is returned at once, `up` turns
 * true when ready). `onState` hears each transition, with a safe detail.
 */
export function connectRedis (cfg: RedisConnectionConfig, onState?: (state: RedisState, detail: string) => void): RedisHandle {
  validateRedisConfig(cfg)
  const client = createClient(cfg)
  let reported: RedisState | null = null
  let lastError: string | null = null
  let closing = false
  const report = (state: RedisState, detail: string): void => {
    if (state === reported) return
    reported = state
    try { onState?.(state, detail) } catch { /* a listener's bug must not break the connection */ }
  }
  const onError = (err: unknown): void => {
    lastError = redisErrorDetail(err)
    if (client.status !== 'ready') report('down', lastError)
  }
  client.on('error', onError)
  // Cluster: errors of single nodes (the cluster itself may still be up).
  client.on('node error', (err: unknown) => { lastError = redisErrorDetail(err) })
  client.on('ready', () => {
    lastError = null
    report('up', 'connected')
  })
  const onDown = (): void => { report('down', closing ? 'closed' : lastError ?? 'connection lost') }
  client.on('close', onDown)
  client.on('end', onDown)

  let sub: Redis | Cluster | undefined
  return {
    client,
    subscriber () {
      if (closing) throw new Error('the Redis handle is closed')
      if (sub === undefined) {
        sub = client.duplicate()
        // Same connection settings; its errors are the client's errors seen twice, so they are only swallowed.
        sub.on('error', () => {})
        sub.on('node error', () => {})
      }
      return sub
    },
    get up () { return !closing && client.status === 'ready' },
    async close () {
      closing = true
      await Promise.all([end(client), sub === undefined ? undefined : end(sub)])
    }
  }
}

/**
 * QUIT when connected (pending replies arrive first), else just drop the
 * socket and stop reconnecting; then wait (a little, bounded) for 'end' so
 * `up` is false once close() resolves.
 */
async function end (c: Redis | Cluster): Promise<void> {
  if (c.status === 'end') return
  let timer: NodeJS.Timeout | undefined
  const ended = new Promise<void>(resolve => {
    c.once('end', () => resolve())
    timer = setTimeout(resolve, 1000)
    timer.unref()
  })
  let quit = false
  if (c.status === 'ready') {
    try {
      await c.quit()
      quit = true
    } catch { /* fall through */ }
  }
  if (!quit) c.disconnect()
  await ended
  clearTimeout(timer)
}
