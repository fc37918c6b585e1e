/**
 * `gateway run --workers N`: the primary process forks N workers (Node's
 * cluster module; the listening sockets are shared, the primary hands out
 * connections). It holds what the workers must share when there is no
 * Redis (hub.ts), serves the admin API for the whole process (status
 * aggregated over the workers, every worker's events in one log), and
 * turns reloads (file change, SIGHUP, POST /reload) and SIGTERM into
 * messages to every worker. Operators' overrides go to every worker with
 * one id (each worker's control loop applies and expires its copy) and are
 * replayed, with the time they have left, to a worker that replaces a dead one.
 * A worker that dies is replaced.
 */
import cluster, { type Worker } from 'node:cluster'
import { systemClock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import { EventLog } from '../events/log.js'
import type { PolicySnapshot } from '../policy/snapshot.js'
import { PolicyWatcher } from '../policy/watcher.js'
import type { ReloadRecord, ReloadTrigger } from '../policy/reload-record.js'
import { startAdmin, type AdminServer } from '../admin/server.js'
import { Hub, type HubWorker } from './hub.js'
import { isMessage, type ToPrimary, type ToWorker } from './protocol.js'
import { aggregateStatus } from './aggregate.js'
import { aggregateMetrics } from '../metrics/index.js'
import { IncidentTracker } from '../incidents/index.js'
import type { Override, OverrideRequest } from '../control/overrides.js'
import type { SetResult } from '../admin/overrides.js'

/** A worker could not start; `message` is safe to print (no stack, no paths). */
export class WorkerStartError extends Error {}

export interface PrimaryOptions {
  readonly file: string
  readonly snapshot: PolicySnapshot
  readonly workers: number
  readonly watch: boolean
  readonly logger: Logger
  /** Told once every worker listens, with the first worker's listener addresses. */
  readonly onReady: (listeners: ReadonlyArray<{ name: string, host: string, port: number }>, admin: { host: string, port: number } | null) => void
}

export class Primary {
  readonly #o: PrimaryOptions
  readonly #events: EventLog
  readonly #hub: Hub
  /** From every worker's events (availability and client impact are per worker: not known here). */
  readonly #incidents = new IncidentTracker(() => true, () => null)
  readonly #workers = new Map<number, Worker>()
  /** The same workers as the hub sees them. */
  readonly #hubWorkers = new Map<number, HubWorker>()
  readonly #pending = new Map<number, (v: unknown) => void>()
  #ids = 0
  /** Overrides set through this primary: id → the request and when it ends (wall ms), for replacement workers. */
  readonly #overrides = new Map<string, { req: OverrideRequest, endsAt: number }>()
  #overrideSeq = 0
  #version: string
  #admin: AdminServer | null = null
  #watcher: PolicyWatcher | null = null
  #stopping = false
  /** Every first worker was ready: from then on a dead worker is replaced. */
  #started = false
  #restartDelay = 0

  constructor (o: PrimaryOptions) {
    this.#o = o
    this.#version = o.snapshot.version
    this.#events = new EventLog(systemClock, () => this.#version)
    this.#hub = new Hub(systemClock, this.#events)
    this.#events.subscribe(this.#incidents.onEvent)
  }

  async start (): Promise<void> {
    cluster.setupPrimary({ serialization: 'advanced' })
    const ready: Array<Promise<unknown>> = []
    for (let i = 0; i < this.#o.workers; i++) ready.push(this.#fork())
    let first: unknown[]
    try {
      first = await Promise.all(ready)
    } catch (e) {
      // One worker could not start: none serves (as one process would not), and the caller says why.
      this.#stopping = true
      for (const w of this.#workers.values()) w.process.kill('SIGKILL')
      await Promise.allSettled(ready)
      throw e
    }
    this.#started = true
    const admin = this.#o.snapshot.admin
    if (admin !== null) {
      this.#admin = await startAdmin(admin, {
        status: () => this.status() as unknown as object,
        events: this.#events,
        reload: async () => await this.reload('admin'),
        health: () => ({ ok: !this.#stopping, version: this.#version, generation: 0 }),
        metrics: async () => await this.metrics(),
        incidents: this.#incidents,
        overrides: {
          list: async () => await this.#askFirst<readonly Override[]>({ t: 'override', id: 0, op: 'list' }) ?? [],
          set: async req => await this.setOverride(req),
          clear: async id => await this.clearOverride(id)
        }
      })
    }
    if (this.#o.watch) {
      this.#watcher = new PolicyWatcher(this.#o.file, () => { this.reload('file').catch(() => {}) })
      this.#watcher.start()
    }
    this.#o.onReady((first[0] as { listeners: Array<{ name: string, host: string, port: number }> }).listeners, this.#admin?.address() ?? null)
  }

  async status (): Promise<object> {
    const all = await Promise.all([...this.#workers.values()].map(async w => await this.#ask(w, id => ({ t: 'status', id }))))
    return aggregateStatus(all as object[], this.#o.workers)
  }

  /** Every worker's metrics, combined (counts summed, shares and states averaged). */
  async metrics (): Promise<{ contentType: string, body: string }> {
    const all = await Promise.all([...this.#workers.values()].map(async w => await this.#ask(w, id => ({ t: 'metrics', id }))))
    return await aggregateMetrics(all as Parameters<typeof aggregateMetrics>[0])
  }

  async reload (trigger: ReloadTrigger): Promise<ReloadRecord> {
    const records = await Promise.all([...this.#workers.values()].map(async w => await this.#ask(w, id => ({ t: 'reload', id, trigger })))) as ReloadRecord[]
    const bad = records.find(r => r?.ok !== true)
    const record = bad ?? records[0] as ReloadRecord
    if (record.ok && record.version !== null) this.#version = record.version
    return record
  }

  /** Sets an override on every worker (the same id everywhere); the first worker's answer is the result. */
  async setOverride (req: OverrideRequest): Promise<SetResult> {
    const overrideId = `ov-${++this.#overrideSeq}`
    for (const [k, o] of this.#overrides) if (o.endsAt <= Date.now()) this.#overrides.delete(k)
    const all = await Promise.all([...this.#workers.values()].map(async w => await this.#ask(w, id => ({ t: 'override', id, op: 'set', req, overrideId })))) as Array<SetResult | null>
    const first = all.find(r => r !== null) ?? { ok: false, detail: 'no worker answered' }
    if (first.ok) this.#overrides.set(overrideId, { req, endsAt: Date.now() + req.ttlMs })
    else if (all.some(r => r?.ok === true)) await this.clearOverride(overrideId) // workers disagreed (mid-reload): none keeps it
    return first
  }

  async clearOverride (overrideId: string): Promise<Override | null> {
    this.#overrides.delete(overrideId)
    const all = await Promise.all([...this.#workers.values()].map(async w => await this.#ask(w, id => ({ t: 'override', id, op: 'clear', overrideId })))) as Array<Override | null>
    return all.find(r => r !== null) ?? null
  }

  /** A replacement worker gets the overrides still held, for the time they have left. */
  #replayOverrides (w: Worker): void {
    const now = Date.now()
    for (const [overrideId, o] of this.#overrides) {
      const left = o.endsAt - now
      if (left <= 0) { this.#overrides.delete(overrideId); continue }
      this.#ask(w, id => ({ t: 'override', id, op: 'set', req: { ...o.req, ttlMs: left }, overrideId })).catch(() => {})
    }
  }

  async #askFirst<T> (make: ToWorker): Promise<T | null> {
    const w = this.#workers.values().next().value
    if (w === undefined) return null
    return await this.#ask(w, id => ({ ...make, id } as ToWorker)) as T | null
  }

  /** SIGTERM: every worker drains and exits; then the admin API closes. */
  async stop (): Promise<void> {
    this.#stopping = true
    this.#watcher?.stop()
    const exits = [...this.#workers.values()].map(async w => await new Promise<void>(resolve => {
      if (w.isDead()) { resolve(); return }
      w.once('exit', () => resolve())
      try { w.send({ t: 'drain' } satisfies ToWorker) } catch { resolve() }
    }))
    await Promise.all(exits)
    await this.#admin?.close()
    await this.#hub.close()
  }

  /**
   * Starts a worker; resolves with its 'ready' message, rejects with a
   * WorkerStartError when it reports a failure or exits before it is ready.
   */
  async #fork (): Promise<unknown> {
    const w = cluster.fork({ GATEWAY_WORKER: '1' })
    const forkedAt = Date.now()
    this.#workers.set(w.id, w)
    const hw: HubWorker = { id: w.id, send: m => { w.send(m) } }
    this.#hubWorkers.set(w.id, hw)
    let ready: (v: unknown) => void = () => {}
    let failed: (e: Error) => void = () => {}
    let isReady = false
    const readyP = new Promise((resolve, reject) => { ready = resolve; failed = reject })
    w.on('message', (m: unknown) => {
      if (!isMessage(m)) return
      const msg = m as ToPrimary & { listeners?: unknown }
      if (msg.t === 'ready') {
        isReady = true
        if (this.#started) this.#replayOverrides(w)
        ready(msg)
      } else if (msg.t === 'failed') failed(new WorkerStartError(typeof msg.detail === 'string' ? msg.detail : 'a worker could not start'))
      else if (msg.t === 'answer') {
        const p = this.#pending.get(msg.id)
        this.#pending.delete(msg.id)
        p?.(msg.value)
      } else this.#hub.receive(hw, msg, this.#hubWorkers.values())
    })
    w.on('exit', (code, signal) => {
      this.#workers.delete(w.id)
      this.#hubWorkers.delete(w.id)
      if (!isReady) failed(new WorkerStartError(`a worker exited before it was ready (${signal ?? `code ${String(code)}`})`))
      if (this.#stopping || !this.#started) return
      // A worker that keeps dying young is restarted ever more slowly (0.5 s doubling to 30 s), never in a tight loop.
      this.#restartDelay = Date.now() - forkedAt < 10_000 ? Math.min(30_000, Math.max(500, this.#restartDelay * 2)) : 0
      this.#o.logger.error({ worker: w.id, code, signal, restartInMs: this.#restartDelay }, 'worker died; starting another')
      const timer = setTimeout(() => {
        if (this.#stopping) return
        this.#fork().catch((e: Error) => { this.#o.logger.error({ detail: e.message }, 'a replacement worker could not start') })
      }, this.#restartDelay)
      timer.unref()
    })
    return await readyP
  }

  async #ask (w: Worker, make: (id: number) => ToWorker): Promise<unknown> {
    const id = ++this.#ids
    return await new Promise(resolve => {
      const timer = setTimeout(() => { this.#pending.delete(id); resolve(null) }, 5000)
      this.#pending.set(id, v => { clearTimeout(timer); resolve(v) })
      try { w.send(make(id)) } catch { clearTimeout(timer); resolve(null) }
    })
  }
}
