/**
 * The control loop: one timer (50 ms by default) that reads what the data
 * plane recorded and decides off the hot path — latency signals into the
 * shift controllers, failure streaks into outlier ejection — then writes the
 * results through the views (views/ports.ts): each route's RouteView
 * (backup share, hedge delay) and each upstream's availability. With a
 * fleet (fleet/), the share applied is the local decision merged with the
 * fleet's. Health-check verdicts arrive from the prober as they flip. Every
 * change is an event; shadow-mode routes get events but apply a share of 0.
 */
import type { Clock } from '../core/clock.js'
import type { EventSink } from '../events/log.js'
import type { ControlTarget, ControlUpstream } from '../views/ports.js'
import type { HealthRegistry } from '../health/health-registry.js'
import type { Prober, ProbeFlip } from './prober.js'
import { newSignalHistogram, addInflightAges, quantileMs } from '../health/signal-window.js'
import { ShiftController, type Signal, type ShiftView } from './controller.js'
import { evaluateOutliers } from './outlier.js'

export interface ControlDeps {
  readonly clock: Clock
  readonly emit: EventSink
  readonly health: HealthRegistry
  readonly prober: Prober | null
  /** A tick that threw: logged, and the loop goes on (a control-plane bug must not stop the data plane). */
  readonly onError?: (err: unknown) => void
  /** @default 50 */
  readonly tickMs?: number
  /** The fleet's say in each route's share (fleet/share-sync.ts); absent = this process decides alone. */
  readonly fleet?: ShareMerge
}

/** Publishes this process's decisions and merges them with its peers'. */
export interface ShareMerge {
  /** The share to apply for `route`, given this process's own decision (`local`) and its signal. */
  merge (route: string, local: number, summary: SignalSummary, now: number): number
}

/** What a process tells its peers of one route each tick. */
export interface SignalSummary {
  readonly phase: string
  /** The primaries' signal (ms) or null while there are too few samples. */
  readonly primaryMs: number | null
}

export class ControlLoop {
  readonly #deps: ControlDeps
  readonly #controllers = new Map<string, ShiftController>()
  readonly #scratch = newSignalHistogram()
  #runtime: ControlTarget | null = null
  #ticks = 0
  #timer: NodeJS.Timeout | null = null

  constructor (deps: ControlDeps) {
    this.#deps = deps
  }

  /** Adopt a runtime before it goes live: controllers follow the routes, shares carry over, probes follow health checks. */
  apply (rt: ControlTarget): void {
    const names = new Set<string>()
    for (const route of rt.routes) {
      const cfg = route.config.shift
      if (cfg === null) continue
      names.add(route.config.name)
      let ctrl = this.#controllers.get(route.config.name)
      if (ctrl === undefined) {
        ctrl = new ShiftController(route.config.name, cfg)
        this.#controllers.set(route.config.name, ctrl)
      } else {
        ctrl.reconfigure(cfg)
      }
      route.view.backupShare = cfg.enforce ? ctrl.share : 0
    }
    for (const name of this.#controllers.keys()) if (!names.has(name)) this.#controllers.delete(name)
    for (const route of rt.routes) {
      if (route.config.outlier !== null) continue
      for (const u of route.upstreams) u.health.ejectedUntil = 0
    }
    this.#syncProbes(rt)
    this.#runtime = rt
  }

  /** Probe verdicts, from the prober. */
  readonly onProbeFlip = (flip: ProbeFlip): void => {
    const [route, upstream] = splitKey(flip.key)
    const h = this.#deps.health.get(route, upstream)
    h.probeDown = flip.to === 'unhealthy'
    this.#deps.emit({ kind: 'probe.flip', route, upstream, before: flip.from, after: flip.to, enforced: true, detail: flip.reason })
  }

  shiftView (route: string): ShiftView | null {
    return this.#controllers.get(route)?.view() ?? null
  }

  tick (): void {
    const rt = this.#runtime
    if (rt === null) return
    const now = this.#deps.clock.now()
    const hedgeTick = (this.#ticks++ % 5) === 0
    for (const route of rt.routes) {
      const hedge = route.config.hedge
      if (hedge !== null && hedge.quantile !== null && hedgeTick) route.view.hedgeDelayMs = this.#observed(route.levels[0] ?? [], hedge.quantile)
      const outlier = route.config.outlier
      if (outlier !== null) {
        for (const level of route.levels) for (const e of evaluateOutliers(level.map(u => u.health), outlier, now)) this.#deps.emit(e)
      }
      const cfg = route.config.shift
      const ctrl = cfg === null ? undefined : this.#controllers.get(route.config.name)
      if (cfg === null || ctrl === undefined) continue
      const primary = this.#signal(route.levels[0] ?? [], now, cfg.quantile, cfg.minSamples)
      const events = ctrl.tick({
        now,
        primary,
        backup: this.#signal(route.backups, now, cfg.quantile, cfg.minSamples),
        backupAvailable: route.backups.some(u => u.weight > 0 && u.available),
        primaryHealthy: !(route.levels[0] ?? []).some(u => u.health.probeDown)
      })
      for (const e of events) this.#deps.emit(e)
      const fleet = this.#deps.fleet
      const share = fleet === undefined ? ctrl.share : fleet.merge(route.config.name, ctrl.share, { phase: ctrl.view().phase, primaryMs: primary.valueMs }, now)
      route.view.backupShare = cfg.enforce ? share : 0
    }
  }

  start (): void {
    if (this.#timer !== null) return
    this.#timer = setInterval(() => {
      try {
        this.tick()
      } catch (err) {
        this.#deps.onError?.(err)
      }
    }, this.#deps.tickMs ?? 50)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /** Quantile over a level: its finished samples in the signal window plus the ages of what is still in flight. */
  #signal (level: readonly ControlUpstream[], now: number, q: 'p50' | 'p90' | 'p95' | 'p99', minSamples: number): Signal {
    const h = this.#scratch
    h.reset()
    for (const u of level) {
      u.stats.signal?.mergeInto(h, now)
      addInflightAges(h, u.stats.inflight, now)
    }
    return quantileMs(h, q, minSamples)
  }

  /** The primaries' observed latency quantile over the stats window (ms), 0 when unknown. */
  #observed (level: readonly ControlUpstream[], q: 'p90' | 'p95' | 'p99'): number {
    let best = 0
    for (const u of level) {
      const l = u.stats.view().window.latencyMs
      if (l !== null && l[q] > best) best = l[q]
    }
    return best
  }

  #syncProbes (rt: ControlTarget): void {
    const prober = this.#deps.prober
    const checked = new Set<string>()
    const targets: Parameters<Prober['sync']>[0][number][] = []
    for (const route of rt.routes) {
      const hc = route.config.healthCheck
      if (hc === null) continue
      for (const u of route.upstreams) {
        checked.add(u.config.key)
        targets.push({ target: { key: u.config.key, origin: u.config.origin, hostHeader: u.config.hostHeader }, config: { path: u.config.basePath + hc.path, intervalMs: hc.intervalMs, timeoutMs: hc.timeoutMs, healthyThreshold: hc.healthyThreshold, unhealthyThreshold: hc.unhealthyThreshold } })
      }
    }
    prober?.sync(targets)
    for (const route of rt.routes) for (const u of route.upstreams) if (!checked.has(u.config.key)) u.health.probeDown = false
  }
}

function splitKey (key: string): [string, string] {
  const i = key.indexOf('/')
  return [key.slice(0, i), key.slice(i + 1)]
}

