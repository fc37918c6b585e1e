/**
 * The composition root: loads the policy, builds the runtime, opens the
 * listeners and the admin API, wires reload triggers, and shuts down
 * gracefully. Everything else receives its dependencies from here.
 */
import { systemClock, type Clock } from '../core/clock.js'
import { silentLogger, type Logger } from '../core/logger.js'
import { policyWarnings } from '../policy/warnings.js'
import { loadPolicyFile } from '../policy/load.js'
import { PolicyError, formatIssue } from '../policy/issues.js'
import { PolicyWatcher } from '../policy/watcher.js'
import { policyFiles, type AccessLogConfig, type PolicySnapshot, type StoreConfig } from '../policy/snapshot.js'
import { StatsRegistry } from '../health/stats-registry.js'
import { buildRuntime, runtimeKeys, type Runtime, type RuntimeDeps } from '../proxy/runtime.js'
import { HealthRegistry } from '../health/health-registry.js'
import { Prober } from '../control/prober.js'
import { LatencyProbes } from '../control/latency-probes.js'
import { RouteViews } from '../views/route-view.js'
import { AdmissionRegistry } from '../admission/gate.js'
import { OverloadGate } from '../admission/overload.js'
import { RateLimitRegistry } from '../ratelimit/route-limits.js'
import { EventLog } from '../events/log.js'
import { ControlLoop } from '../control/loop.js'
import { DeliveryRegistry } from '../delivery/route-delivery.js'
import { createSharedState, type SharedState } from './shared-state.js'
import { PoolRegistry } from '../proxy/pools.js'
import { DeadlineSweeper } from '../proxy/deadlines.js'
import { UploadGuard } from '../edge/upload-guard.js'
import { createRequestHandler, type HandlerDeps } from '../proxy/handler.js'
import { Listener } from '../edge/listener.js'
import { AccessLog } from '../edge/access-log.js'
import { createUpgradeHandler } from '../proxy/upgrade.js'
import { startAdmin, type AdminServer } from '../admin/server.js'
import { prepareReload, type Env, type ReloadRecord, type ReloadTrigger } from './reload.js'
import { buildStatus } from './status.js'
import { GatewayMetrics } from '../metrics/index.js'
import { IncidentTracker } from '../incidents/index.js'
import { metricsSource } from './metrics-source.js'
import { OverrideBook, checkOverride, type Override, type OverrideRequest } from '../control/overrides.js'
import type { SetResult } from '../admin/overrides.js'

export interface GatewayOptions {
  readonly policyFile: string
  readonly clock?: Clock
  readonly logger?: Logger
  /** Where admin.tokenEnv is looked up. @default process.env */
  readonly env?: Env
  /** Reload when the file changes. @default true */
  readonly watch?: boolean
  /** Period of the control loop (shift controllers, outlier ejection). @default 50 */
  readonly controlTickMs?: number
  /** 0..1 source for retry jitter. @default Math.random */
  readonly random?: () => number
  /** How often total-request deadlines are checked. @default 25 */
  readonly deadlineTickMs?: number
  /** Open the policy's admin API. @default true (workers: false, the primary serves it) */
  readonly admin?: boolean
  /**
   * Shared state to use instead of the one the policy's store block gives,
   * chosen from that block (a worker without Redis: the primary's); null =
   * the policy's own.
   */
  readonly shared?: (store: StoreConfig) => SharedState | null
}

export interface Addresses {
  readonly listeners: ReadonlyArray<{ name: string, host: string, port: number }>
  readonly admin: { host: string, port: number } | null
}

export class Gateway {
  readonly #file: string
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #env: Env
  readonly #pools = new PoolRegistry()
  readonly #views = new RouteViews()
  readonly #admission: AdmissionRegistry
  readonly #overload: OverloadGate
  readonly #rateLimits: RateLimitRegistry
  readonly #stats: StatsRegistry
  readonly #sweeper: DeadlineSweeper
  readonly #uploads: UploadGuard
  readonly #events: EventLog
  readonly #delivery: DeliveryRegistry
  readonly #random: () => number
  readonly #health: HealthRegistry
  readonly #prober: Prober
  readonly #latencyProbes: LatencyProbes
  readonly #control: ControlLoop
  readonly #shared: SharedState
  readonly #startedAt: number
  #runtime: Runtime
  #listeners: Listener[] = []
  #admin: AdminServer | null = null
  readonly #metrics: GatewayMetrics
  #accessLog: AccessLog | null = null
  readonly #incidents: IncidentTracker
  readonly #overrides: OverrideBook
  readonly #unsubscribeIncidents: () => void
  #watcher: PolicyWatcher | null = null
  #lastReload: ReloadRecord | null = null
  #reloading: Promise<ReloadRecord> = Promise.resolve(null as unknown as ReloadRecord)
  #closing: Promise<void> | null = null

  /** tls.verify: false is allowed, never quiet: a warning on every load (policy/warnings.ts). */
  #warnUnverifiedTls (s: PolicySnapshot): void {
    for (const w of policyWarnings(s)) {
      if (w.code === 'GW_WARN_TLS_UNVERIFIED') this.#logger.warn({ code: w.code }, w.message)
    }
  }

  private constructor (snapshot: PolicySnapshot, opts: GatewayOptions) {
    this.#file = opts.policyFile
    this.#clock = opts.clock ?? systemClock
    this.#logger = opts.logger ?? silentLogger
    this.#env = opts.env ?? process.env
    this.#stats = new StatsRegistry(this.#clock, snapshot.statsWindowMs, snapshot.statsResolutionMs)
    this.#sweeper = new DeadlineSweeper(this.#clock, opts.deadlineTickMs)
    this.#uploads = new UploadGuard(this.#clock)
    this.#admission = new AdmissionRegistry(this.#clock)
    this.#overload = new OverloadGate(this.#clock)
    this.#startedAt = this.#clock.wall()
    this.#events = new EventLog(this.#clock, () => this.#runtime.snapshot.version)
    this.#health = new HealthRegistry(this.#events.add)
    this.#random = opts.random ?? Math.random
    this.#warnUnverifiedTls(snapshot)
    this.#shared = opts.shared?.(snapshot.store) ?? createSharedState(snapshot.store, this.#clock, this.#logger)
    this.#delivery = new DeliveryRegistry(this.#clock, this.#shared.storeFactory)
    this.#rateLimits = new RateLimitRegistry(() => this.#shared.globalBuckets, () => this.#clock.now())
    // Flips arrive from probes started later (control.apply), never during construction.
    this.#prober = new Prober({ clock: this.#clock, onFlip: flip => this.#control.onProbeFlip(flip) })
    this.#latencyProbes = new LatencyProbes(this.#clock)
    this.#overrides = new OverrideBook(this.#clock, this.#events.add)
    this.#control = new ControlLoop({
      overrides: this.#overrides,
      clock: this.#clock,
      emit: this.#events.add,
      health: this.#health,
      prober: this.#prober,
      latencyProbes: this.#latencyProbes,
      tickMs: opts.controlTickMs,
      fleet: this.#shared.fleet ?? undefined,
      onError: err => this.#logger.error({ err }, 'control loop tick failed; traffic keeps its last shares')
    })
    this.#runtime = buildRuntime(snapshot, this.#runtimeDeps(), 1, this.#startedAt)
    this.#control.apply(this.#runtime)
    this.#metrics = new GatewayMetrics(metricsSource({
      runtime: () => this.#runtime,
      listeners: () => this.#listeners,
      shiftView: name => this.#control.shiftView(name),
      store: () => ({ kind: this.#shared.kind, up: this.#shared.up() }),
      clock: this.#clock
    }), this.#events)
    const routeOf = (name: string): Runtime['routes'][number] | undefined => this.#runtime.routes.find(r => r.config.name === name)
    this.#incidents = new IncidentTracker(
      name => routeOf(name)?.upstreams.some(u => u.weight > 0 && u.available) ?? true,
      name => routeOf(name)?.delivery.responses ?? null)
    this.#unsubscribeIncidents = this.#events.subscribe(this.#incidents.onEvent)
  }

  #runtimeDeps (): RuntimeDeps {
    return { pools: this.#pools, stats: this.#stats, health: this.#health, delivery: this.#delivery, views: this.#views, admission: this.#admission, overload: this.#overload, rateLimits: this.#rateLimits }
  }

  /** Loads the policy and opens every listener; throws PolicyError for an invalid file. */
  static async start (opts: GatewayOptions): Promise<Gateway> {
    const loaded = await loadPolicyFile(opts.policyFile, opts.env ?? process.env)
    if (!loaded.ok) throw new PolicyError(loaded.issues, loaded.code)
    const gw = new Gateway(loaded.snapshot, opts)
    try {
      await gw.#open(opts.watch ?? true, opts.admin ?? true)
    } catch (err) {
      await gw.close()
      throw err
    }
    gw.#lastReload = { at: new Date(gw.#clock.wall()).toISOString(), trigger: 'start', ok: true, changed: true, version: loaded.snapshot.version }
    return gw
  }

  async #open (watch: boolean, withAdmin: boolean): Promise<void> {
    const redis = this.#runtime.snapshot.store.redis
    if (redis !== null && !await this.#shared.ready(redis.connectTimeoutMs)) {
      this.#logger.warn({ code: 'GW_ERR_IDEMPOTENCY_STORE_UNAVAILABLE' }, 'redis not reachable at start: serving on local state until it is')
    }
    const deps: HandlerDeps = {
      clock: this.#clock,
      sweeper: this.#sweeper,
      uploads: this.#uploads,
      current: () => this.#runtime,
      random: this.#random,
      onAttemptFailed: info => {
        const f = info.failure
        this.#logger.warn({ route: info.route, upstream: info.upstream, requestId: info.requestId, method: info.method, delivery: f.delivery, status: f.status === 0 ? undefined : f.status, code: f.spec?.code, decision: info.decision, cause: describeCause(info.cause) }, 'upstream attempt failed')
        this.#events.add({ kind: 'attempt.failed', route: info.route, upstream: info.upstream, before: f.delivery, after: info.decision.startsWith('retrying') ? 'retried' : 'not retried', enforced: true, detail: `${info.method} ${f.delivery} (${f.detail}); ${info.decision} [request ${info.requestId}]` })
      },
      onInternalError: (err, requestId) => this.#logger.error({ requestId, err }, 'internal error')
    }
    for (const cfg of this.#runtime.snapshot.listeners) {
      const listener = new Listener(cfg, createRequestHandler(deps, cfg), createUpgradeHandler(deps, cfg))
      this.#listeners.push(listener)
      await listener.listen()
    }
    await this.#useAccessLog(this.#runtime.snapshot.accessLog)
    const admin = this.#runtime.snapshot.admin
    if (admin !== null && withAdmin) {
      const metrics = this.#metrics
      this.#admin = await startAdmin(admin, {
        metrics: async () => ({ contentType: metrics.contentType, body: await metrics.text() }),
        incidents: this.#incidents,
        overrides: { list: () => this.#overrides.list(), set: req => this.setOverride(req), clear: id => this.clearOverride(id) },
        status: () => this.status(),
        events: this.#events,
        reload: async () => await this.reload('admin'),
        health: () => ({ ok: this.#closing === null, version: this.#runtime.snapshot.version, generation: this.#runtime.generation })
      })
    }
    this.#stats.start()
    this.#control.start()
    if (watch) {
      this.#watcher = new PolicyWatcher(this.#file, () => { this.reload('file').catch(() => {}) })
      this.#watcher.start()
      this.#watcher.watchAlso(policyFiles(this.#runtime.snapshot))
    }
  }

  get runtime (): Runtime { return this.#runtime }
  get lastReload (): ReloadRecord | null { return this.#lastReload }
  get stats (): StatsRegistry { return this.#stats }
  get events (): EventLog { return this.#events }
  get control (): ControlLoop { return this.#control }
  /** Prometheus metrics (also served on the admin API as GET /metrics). */
  get metrics (): GatewayMetrics { return this.#metrics }
  get incidents (): IncidentTracker { return this.#incidents }
  /** Operators' overrides held now. */
  get overrides (): readonly Override[] { return this.#overrides.list() }

  /** Sets an operator's override (admin POST /overrides); applied at once, an event in the log. */
  setOverride (req: OverrideRequest, id?: string): SetResult {
    const why = checkOverride(req, this.#runtime.routes)
    if (why !== null) return { ok: false, detail: why }
    const route = this.#runtime.routes.find(r => r.config.name === req.route)
    const u = route?.upstreams.find(x => x.config.name === req.upstream)
    const before = req.kind === 'pin'
      ? route?.view.backupShare ?? 0
      : req.kind === 'pause'
        ? this.#control.shiftView(req.route)?.phase ?? 'idle'
        : req.kind === 'breaker' ? u?.health.breaker?.state ?? 'none' : u?.available === true ? 'serving' : 'out'
    try {
      const override = this.#overrides.set(req, before, id)
      this.#control.applyOverrides()
      return { ok: true, override }
    } catch (err) {
      return { ok: false, detail: (err as Error).message }
    }
  }

  /** Ends an override before its expiry; null when no such id is held. */
  clearOverride (id: string): Override | null {
    const cleared = this.#overrides.clear(id)
    if (cleared !== null) this.#control.applyOverrides()
    return cleared
  }

  addresses (): Addresses {
    return {
      listeners: this.#listeners.map(l => ({ name: l.config.name, ...l.address() })),
      admin: this.#admin?.address() ?? null
    }
  }

  status (): object {
    const listeners = this.#listeners.map(l => ({ name: l.config.name, inflight: l.inflight, connections: l.connections, tls: l.tls, http2: l.config.http2 }))
    const now = this.#clock.now()
    const fleet = this.#shared.fleet
    const shift = (name: string): object | null => {
      const v = this.#control.shiftView(name)
      return v === null ? null : { ...v, fleet: fleet === null ? null : fleet.peers(name, now) }
    }
    const store = { kind: this.#shared.kind, instance: this.#shared.instance, up: this.#shared.up() }
    const og = this.#runtime.overload
    const overload = og === null || og.config === null ? null : { ...og.config, inflight: og.inflight, waiting: og.waiting, queued: og.queued, admitted: { ...og.admitted }, refused: { ...og.refused } }
    return { ...buildStatus(this.#runtime, this.#lastReload, this.#startedAt, this.#clock, shift, key => this.#prober.state(key)), store, listeners, overload, overrides: this.#overrides.list() }
  }

  /** Re-reads the policy file; the running policy stays unless the new one is valid. */
  async reload (trigger: ReloadTrigger): Promise<ReloadRecord> {
    const next = this.#reloading.then(async () => await this.#reloadNow(trigger))
    this.#reloading = next.catch(() => null as unknown as ReloadRecord)
    return await next
  }

  async #reloadNow (trigger: ReloadTrigger): Promise<ReloadRecord> {
    const at = new Date(this.#clock.wall()).toISOString()
    const current = this.#runtime.snapshot
    const prepared = await prepareReload(this.#file, current, this.#env)
    let record: ReloadRecord
    if (prepared.kind === 'unchanged') {
      record = { at, trigger, ok: true, changed: false, version: current.version }
    } else if (prepared.kind === 'rejected') {
      record = { at, trigger, ok: false, changed: false, version: null, code: prepared.code, issues: prepared.issues }
      this.#logger.error({ trigger, code: prepared.code, issues: prepared.issues }, 'policy reload rejected; the previous policy keeps serving')
      const first = prepared.issues[0]
      this.#events.add({
        kind: 'policy.rejected',
        route: '*',
        before: current.version,
        after: prepared.code,
        enforced: true,
        detail: `${prepared.code} (${trigger}): ${prepared.issues.length} problem(s)${first === undefined ? '' : `, first: ${formatIssue(first)}`}; version ${current.version} keeps serving`
      })
    } else {
      const s = prepared.snapshot
      this.#stats.configure(s.statsWindowMs, s.statsResolutionMs)
      const rt = buildRuntime(s, this.#runtimeDeps(), this.#runtime.generation + 1, this.#clock.wall())
      this.#control.apply(rt) // shares carry over before the swap, so no request sees a reset
      const before = current.version
      this.#runtime = rt
      s.listeners.forEach((l, i) => this.#listeners[i]?.updateTls(l.tls))
      this.#watcher?.watchAlso(policyFiles(s))
      const keys = runtimeKeys(rt)
      this.#pools.retain(keys.pools)
      this.#stats.retain(keys.stats)
      this.#health.retain(keys.stats)
      const names = new Set(s.routes.map(r => r.name))
      this.#delivery.retain(names)
      this.#views.retain(names)
      this.#admission.retain(names)
      this.#rateLimits.retain(names)
      this.#shared.fleet?.retain(names)
      record = { at, trigger, ok: true, changed: true, version: s.version }
      this.#events.add({ kind: 'policy.reload', route: '*', before, after: s.version, enforced: true, detail: `generation ${rt.generation} (${trigger})` })
      this.#logger.info({ trigger, version: s.version, generation: rt.generation }, 'policy reloaded')
      this.#warnUnverifiedTls(s)
    }
    // Every reload (SIGHUP after log rotation too) reopens the access log file, or applies a changed block.
    await this.#useAccessLog(this.#runtime.snapshot.accessLog)
    // An unchanged file after a failed reload does not hide that failure.
    if (record.changed || !record.ok || this.#lastReload?.ok !== false) this.#lastReload = record
    return record
  }

  /** The policy's access log: the same block reopens its file, a changed one replaces it. */
  async #useAccessLog (cfg: AccessLogConfig | null): Promise<void> {
    const old = this.#accessLog
    if (old !== null && cfg !== null && old.config.destination === cfg.destination && old.config.sampleRatio === cfg.sampleRatio) {
      old.reopen()
      return
    }
    this.#accessLog = cfg === null ? null : new AccessLog(cfg, err => {
      const code = (err as NodeJS.ErrnoException).code
      this.#logger.error({ code: code ?? 'ERROR' }, 'access log cannot be written; its lines are dropped, requests are served')
    }, this.#random)
    for (const l of this.#listeners) l.accessLog = this.#accessLog
    await old?.close()
  }

  /** Graceful: stop accepting, let in-flight requests finish (up to the policy's drainTimeout), close. */
  async close (): Promise<void> {
    this.#closing ??= this.#closeNow()
    await this.#closing
  }

  async #closeNow (): Promise<void> {
    this.#watcher?.stop()
    const drainMs = this.#runtime.snapshot.drainTimeoutMs
    const results = await Promise.all(this.#listeners.map(async l => await l.drain(drainMs)))
    const forced = results.reduce((n, r) => n + r.forced, 0)
    if (forced > 0) this.#logger.warn({ forced }, 'drain timeout reached; cut requests still in flight')
    await this.#admin?.close()
    this.#metrics.close()
    this.#unsubscribeIncidents()
    await this.#useAccessLog(null)
    this.#control.stop()
    await this.#prober.close()
    await this.#latencyProbes.close()
    this.#health.close()
    await this.#delivery.close()
    await this.#shared.close()
    this.#stats.close()
    this.#sweeper.close()
    this.#uploads.close()
    this.#admission.close()
    this.#overload.close()
    await this.#pools.destroy()
  }
}

/** Error summary for logs: code and message, never the upstream address. */
function describeCause (cause: unknown): { code?: string, message?: string } {
  if (cause === null || typeof cause !== 'object') return {}
  const c = cause as { code?: unknown, name?: unknown }
  return { code: typeof c.code === 'string' ? c.code : undefined, message: typeof c.name === 'string' ? c.name : undefined }
}
