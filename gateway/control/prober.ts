/**
 * Active HTTP health checks (Envoy/HAProxy style): each target is probed with
 * a GET on its own timer, and its state flips only after a run of
 * consecutive successes or failures, so one lost probe does not eject an
 * upstream and one lucky probe does not bring a broken one back.
 *
 * Per target: at most one probe in flight, and the next is scheduled
 * `intervalMs` after the previous one ENDS, so a hanging upstream sees one
 * probe per interval + timeout instead of a growing pile. Only state changes
 * are published (STYLE.md #7); the control plane wires `onFlip` in.
 */
import { Agent, request, type Dispatcher } from 'undici'
import type { Clock } from '../core/clock.js'
import type { UpstreamTlsConfig } from '../policy/snapshot.js'
import { upstreamConnector } from '../core/upstream-connector.js'

/** How one target is probed. */
export interface ProbeConfig {
  /** Path (and optional query) of the GET, e.g. `/healthz`. */
  readonly path: string
  /** Time between the end of one probe and the start of the next, in ms. */
  readonly intervalMs: number
  /** A probe (connect, headers and body) slower than this fails, in ms. */
  readonly timeoutMs: number
  /** Consecutive successes needed to become healthy. */
  readonly healthyThreshold: number
  /** Consecutive failures needed to become unhealthy. */
  readonly unhealthyThreshold: number
  /**
   * Inclusive status range counted as success.
   * @default [200, 399]
   */
  readonly expectStatus?: readonly [number, number]
}

/** What is probed. */
export interface ProbeTarget {
  /** Identity of the target, e.g. `route/upstream`. */
  readonly key: string
  /** `http://host:port`, no trailing slash. */
  readonly origin: string
  /** Sent as the `host` header, so virtual-hosted upstreams answer for the right site. */
  readonly hostHeader: string
  /** An https:// upstream's TLS settings (probes connect as proxied requests do). */
  readonly tls?: UpstreamTlsConfig | null
}

export type ProbeState = 'unknown' | 'healthy' | 'unhealthy'

/** A state change, published once per change. */
export interface ProbeFlip {
  key: string
  from: ProbeState
  to: ProbeState
  /** `clock.now()` when the deciding probe ended. */
  at: number
  /** E.g. `status 503`, `timeout after 500ms`, `connect refused`, `2 consecutive successes`. */
  reason: string
}

/** A target's state and counters, for status pages. */
export interface ProbeView {
  readonly state: ProbeState
  readonly consecutiveSuccesses: number
  readonly consecutiveFailures: number
  /** `clock.now()` when the last probe ended; null before the first. */
  readonly lastProbeAt: number | null
  /** `status 200`, or why the last probe failed; null before the first. */
  readonly lastResult: string | null
}

/** Options of {@link Prober}. */
export interface ProberOptions {
  clock: Clock
  /** Called on every state change; a throw is reported as a warning and probing goes on. */
  onFlip: (flip: ProbeFlip) => void
  /**
   * Dispatcher for an origin.
   * @default a dedicated undici Agent owned (and closed) by the prober
   */
  dispatcherFor?: (origin: string) => Dispatcher
  /**
   * Source of 0..1 values that delay a new target's first probe by
   * `jitter() * min(intervalMs, 1000)` ms, so targets added together do not
   * probe in lock-step.
   * @default Math.random
   */
  jitter?: () => number
  /**
   * Told when each probe starts and ends (latency probes feed the shift's
   * signal with them). `end` gets the probe's time to its answer (null when
   * there was none to time: refused, reset) and whether it failed (an
   * answer outside the expected statuses, a timeout, a reset; not a connect
   * failure, which reached no upstream).
   */
  observe?: ProbeObserver
  /** @default gateway-health-check */
  userAgent?: string
}

export interface ProbeObserver {
  begin (key: string, startedAt: number): unknown
  end (token: unknown, latencyMs: number | null, failed: boolean): void
}

/** describeError results for probes that never reached an upstream. */
const CONNECT_FAILURES = new Set(['connect refused', 'connect timeout', 'dns lookup failed', 'host unreachable'])

const DEFAULT_EXPECT: readonly [number, number] = [200, 399]
const USER_AGENT = 'gateway-health-check'
/** Health endpoints answer small; a huge body is cut rather than read. */
const BODY_LIMIT = 64 * 1024

/** Abort reason of our own timeout, told apart from close() by identity. */
class ProbeTimeout extends Error {}

interface Entry {
  readonly target: ProbeTarget
  readonly config: ProbeConfig
  /** Identity for sync(): an entry is kept only if this is unchanged. */
  readonly id: string
  state: ProbeState
  successes: number
  failures: number
  lastProbeAt: number | null
  lastResult: string | null
  timer: NodeJS.Timeout | null
  abort: AbortController | null
  /** The latest probe, so close() can wait for it to unwind. */
  running: Promise<void> | null
  stopped: boolean
}

/** Probes a set of targets and publishes their health flips. */
export class Prober {
  readonly #clock: Clock
  readonly #onFlip: (flip: ProbeFlip) => void
  readonly #dispatcherFor: ((origin: string) => Dispatcher) | null
  readonly #jitter: () => number
  /** Own agents by TLS settings ('' for http://), when no dispatcherFor was given. */
  readonly #agents = new Map<string, Agent>()
  readonly #observe: ProbeObserver | undefined
  readonly #userAgent: string
  readonly #entries = new Map<string, Entry>()
  #closed = false

  constructor (opts: ProberOptions) {
    this.#clock = opts.clock
    this.#onFlip = opts.onFlip
    this.#jitter = opts.jitter ?? Math.random
    this.#observe = opts.observe
    this.#userAgent = opts.userAgent ?? USER_AGENT
    this.#dispatcherFor = opts.dispatcherFor ?? null
  }

  /** Own pools (so probes never queue behind, or count against, proxied traffic), one per TLS setting. */
  #dispatcher (target: ProbeTarget): Dispatcher {
    if (this.#dispatcherFor !== null) return this.#dispatcherFor(target.origin)
    const tls = target.tls ?? null
    const id = tls?.id ?? ''
    let agent = this.#agents.get(id)
    if (agent === undefined) {
      agent = new Agent({ connect: upstreamConnector(10_000, tls) })
      this.#agents.set(id, agent)
    }
    return agent
  }

  /**
   * Replaces the set of targets (on policy reload). New keys start probing,
   * removed keys stop, unchanged keys (same target and config) keep their
   * state and schedule. A changed key starts over as `unknown`, with a flip
   * if it was known, since its old verdict was about something else.
   * Ignored after close().
   */
  sync (targets: ReadonlyArray<{ target: ProbeTarget, config: ProbeConfig }>): void {
    if (this.#closed) return
    const next = new Map<string, { target: ProbeTarget, config: ProbeConfig, id: string }>()
    for (const { target, config } of targets) {
      next.set(target.key, { target, config, id: JSON.stringify([target, config]) })
    }
    for (const [key, entry] of this.#entries) {
      const wanted = next.get(key)
      if (wanted !== undefined && wanted.id === entry.id) continue
      this.#stop(entry)
      this.#entries.delete(key)
      if (wanted !== undefined && entry.state !== 'unknown') {
        this.#publish({ key, from: entry.state, to: 'unknown', at: this.#clock.now(), reason: 'target or config changed' })
      }
    }
    for (const [key, { target, config, id }] of next) {
      if (this.#entries.has(key)) continue
      const entry: Entry = {
        target, config, id,
        state: 'unknown', successes: 0, failures: 0, lastProbeAt: null, lastResult: null,
        timer: null, abort: null, running: null, stopped: false
      }
      this.#entries.set(key, entry)
      const jitter = Math.min(1, Math.max(0, this.#jitter()))
      this.#schedule(entry, jitter * Math.min(config.intervalMs, 1000))
    }
  }

  /** The target's state; `unknown` until a threshold is first reached, or for an unknown key. */
  state (key: string): ProbeState {
    return this.#entries.get(key)?.state ?? 'unknown'
  }

  /** The target's state and counters, or null for an unknown key. */
  view (key: string): ProbeView | null {
    const e = this.#entries.get(key)
    if (e === undefined) return null
    return {
      state: e.state,
      consecutiveSuccesses: e.successes,
      consecutiveFailures: e.failures,
      lastProbeAt: e.lastProbeAt,
      lastResult: e.lastResult
    }
  }

  /**
   * Probe `key` now instead of at its next turn, unless a probe of it is
   * already in flight (at most one per target still holds). The schedule
   * goes on from this probe's end. True when a probe was started.
   */
  probeNow (key: string): boolean {
    const entry = this.#entries.get(key)
    if (entry === undefined || entry.stopped || entry.timer === null) return false
    clearTimeout(entry.timer)
    this.#fire(entry)
    return true
  }

  /** Stops all timers, aborts in-flight probes and closes the prober's own Agent. Idempotent. */
  async close (): Promise<void> {
    this.#closed = true
    const running: Array<Promise<void>> = []
    for (const entry of this.#entries.values()) {
      this.#stop(entry)
      if (entry.running !== null) running.push(entry.running)
    }
    this.#entries.clear()
    await Promise.all(running)
    await Promise.all([...this.#agents.values()].map(async a => await a.close().catch(() => {})))
    this.#agents.clear()
  }

  #schedule (entry: Entry, delayMs: number): void {
    entry.timer = setTimeout(this.#fire, delayMs, entry)
    // Probing alone must never keep the process alive.
    entry.timer.unref()
  }

  readonly #fire = (entry: Entry): void => {
    entry.timer = null
    if (entry.stopped) return
    entry.running = this.#probe(entry)
  }

  /** One probe; never rejects, since it runs from a timer. */
  async #probe (entry: Entry): Promise<void> {
    const { target, config } = entry
    const abort = new AbortController()
    entry.abort = abort
    const timeout = new ProbeTimeout(`timeout after ${config.timeoutMs}ms`)
    const timer = setTimeout(abortWith, config.timeoutMs, abort, timeout)
    timer.unref()
    const startedAt = this.#clock.now()
    const token = this.#observe?.begin(target.key, startedAt)
    let ok = false
    let answeredAt: number | null = null
    let refused = false
    let result: string
    try {
      const res = await request(target.origin + config.path, {
        dispatcher: this.#dispatcher(target),
        method: 'GET',
        headers: { host: target.hostHeader, 'user-agent': this.#userAgent },
        signal: abort.signal
      })
      answeredAt = this.#clock.now()
      // Read (and drop) the body so the keep-alive socket can be reused; the
      // signal still bounds it, so a trickling body is a timeout too.
      await res.body.dump({ limit: BODY_LIMIT, signal: abort.signal })
      const [min, max] = config.expectStatus ?? DEFAULT_EXPECT
      ok = res.statusCode >= min && res.statusCode <= max
      result = `status ${res.statusCode}`
    } catch (err) {
      if (abort.signal.reason === timeout) {
        result = timeout.message
        answeredAt ??= this.#clock.now()
      } else {
        result = describeError(err)
        refused = CONNECT_FAILURES.has(result)
      }
    } finally {
      clearTimeout(timer)
      entry.abort = null
    }
    // A probe cut short by a stop says nothing about the upstream.
    // So is a probe that could not connect (nothing was sent; see ProbeObserver).
    if (token !== undefined) this.#observe?.end(token, entry.stopped || answeredAt === null ? null : answeredAt - startedAt, !entry.stopped && !refused && !ok)
    // Removed, replaced or closed meanwhile: its verdict belongs to no one.
    if (entry.stopped) return
    this.#record(entry, ok, result)
    this.#schedule(entry, config.intervalMs)
  }

  #record (entry: Entry, ok: boolean, result: string): void {
    const at = this.#clock.now()
    entry.lastProbeAt = at
    entry.lastResult = result
    let to: ProbeState = entry.state
    let reason = result
    if (ok) {
      entry.successes++
      entry.failures = 0
      if (entry.successes >= entry.config.healthyThreshold) {
        to = 'healthy'
        reason = `${entry.successes} consecutive success${entry.successes === 1 ? '' : 'es'}`
      }
    } else {
      entry.failures++
      entry.successes = 0
      if (entry.failures >= entry.config.unhealthyThreshold) to = 'unhealthy'
    }
    if (to === entry.state) return
    const from = entry.state
    entry.state = to
    this.#publish({ key: entry.target.key, from, to, at, reason })
  }

  #publish (flip: ProbeFlip): void {
    try {
      this.#onFlip(flip)
    } catch (err) {
      // A faulty listener must not stop probing nor crash the gateway from a timer.
      process.emitWarning(`health prober onFlip threw: ${(err as Error)?.message ?? String(err)}`)
    }
  }

  #stop (entry: Entry): void {
    entry.stopped = true
    if (entry.timer !== null) clearTimeout(entry.timer)
    entry.timer = null
    entry.abort?.abort(new Error('probe stopped'))
  }
}

function abortWith (abort: AbortController, reason: Error): void {
  abort.abort(reason)
}

/** A short, stable reason for a failed probe (shown to operators, so no stack). */
function describeError (err: unknown): string {
  const code = String((err as { code?: unknown } | null)?.code ?? '')
  switch (code) {
    case 'ECONNREFUSED': return 'connect refused'
    case 'UND_ERR_CONNECT_TIMEOUT': case 'ETIMEDOUT': return 'connect timeout'
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'dns lookup failed'
    case 'EHOSTUNREACH': case 'ENETUNREACH': case 'EHOSTDOWN': return 'host unreachable'
    case 'ECONNRESET': case 'EPIPE': case 'UND_ERR_SOCKET': case 'UND_ERR_CLOSED': return 'connection reset'
  }
  if (code.startsWith('HPE_') || (err as Error | null)?.name === 'HTTPParserError') return 'invalid http response'
  return `error ${code !== '' ? code : (err as Error | null)?.message ?? String(err)}`
}
