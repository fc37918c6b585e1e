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
import type { ControlRoute, ControlTarget, ControlUpstream } from '../views/ports.js'
import type { HealthRegistry } from '../health/health-registry.js'
import type { Prober, ProbeFlip } from './prober.js'
import { newSignalHistogram, addInflightAges, quantileMs, type Tally } from '../health/signal-window.js'
import type { Histogram } from 'hdr-histogram-js'
import type { ShiftConfig } from '../policy/snapshot.js'
import type { LatencyProbes } from './latency-probes.js'
import { ShiftController, type Signal, type ShiftView } from './controller.js'
import { evaluateOutliers } from './outlier.js'
import type { OverrideBook } from './overrides.js'
import { SheddingWatch } from './shedding.js'
import { AdaptiveLimits } from './adaptive-limit.js'

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
  /** The shift's synthetic probes; absent = none are sent. */
  readonly latencyProbes?: LatencyProbes
  /** Operators' overrides (pins, drains, forced breakers, pauses); absent = none. */
  readonly overrides?: OverrideBook
}

/** Probe samples a probe-based signal needs (probes come every `probe.interval`, so a window holds few). */
const PROBE_MIN_SAMPLES = 3
/**
 * Good probe answers in a row before the probes alone say the failures have
 * stopped (a primary the shift emptied after an error trip): at a 30 % error
 * rate, 8 in a row come by chance 6 % of the time, and the calm dwell that
 * follows asks for more.
 */
const PROBE_OK_STREAK = 8
/** Stuck attempts per attempt finished within the stuck age that make a stall (see #stalled). */
const STALL_RATIO = 3
/** Weight of one tick's healthy p99 in the primaries' baseline (about a second to follow a change at 50 ms ticks). */
const BASELINE_ALPHA = 0.1

/** Connect failures per finished attempt beyond which the error signal stands aside (see #failureRate). */
const UNREACHABLE_SHARE = 0.05
/** #failureRate's answer when that share is passed. */
const UNREACHABLE = 'unreachable'

/** What #stalled finds among the primaries' attempts in flight. */
interface StallReading {
  readonly stalled: boolean
  readonly stuck: number
  readonly oldestStartedAt: number
}

/** One level's signals, for the controller. */
interface LevelSignals {
  readonly latency: Signal
  readonly errors: number | null
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
  readonly #tally: Tally = { done: 0, failed: 0, unreachable: 0 }
  /** Per route: the primaries' healthy p99 of finished attempts (ms), the yardstick of the stall signal. */
  readonly #baselines = new Map<string, number>()
  /** Per route: when the current incident began (latched at its first sign, see #suspect). */
  readonly #onsets = new Map<string, number>()
  /** Per route: when the backups were last probed out of turn. */
  readonly #forcedAt = new Map<string, number>()
  /** Per route paused by an operator: the share applied when the pause began. */
  readonly #frozen = new Map<string, number>()
  readonly #shedding = new SheddingWatch()
  readonly #adaptive = new AdaptiveLimits()
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
    for (const map of [this.#baselines, this.#onsets, this.#forcedAt, this.#frozen]) for (const name of map.keys()) if (!names.has(name)) map.delete(name)
    for (const route of rt.routes) {
      if (route.config.outlier !== null) continue
      for (const u of route.upstreams) u.health.ejectedUntil = 0
    }
    this.#syncProbes(rt)
    this.#deps.latencyProbes?.sync(rt)
    this.#deps.overrides?.retain(rt.routes)
    this.#runtime = rt
    this.applyOverrides()
  }

  /**
   * Applies the overrides now (on apply, and after one is set or cleared)
   * rather than at the next tick: holds on upstreams, and pinned shares; a
   * route without a shift controller whose pin ended goes back to 0 (one
   * with a controller gets its share at the next tick).
   */
  applyOverrides (): void {
    const rt = this.#runtime
    if (rt === null) return
    for (const route of rt.routes) {
      this.#hold(route)
      const pin = this.#deps.overrides?.pin(route.config.name) ?? null
      if (pin !== null) route.view.backupShare = pin
      else if (route.config.shift === null) route.view.backupShare = 0
    }
  }

  /**
   * An operator's holds on a route's upstreams, written into their
   * availability views: drained, breaker forced (forcing it closed resets
   * an open breaker, so it judges afresh once the hold ends).
   */
  #hold (route: ControlRoute): void {
    const book = this.#deps.overrides
    if (book === undefined) return
    for (const u of route.upstreams) {
      const h = book.upstream(route.config.name, u.config.name)
      const health = u.health
      if (h.breaker === 'closed' && health.forcedBreaker !== 'closed') health.breaker?.reset('forced closed by an operator')
      health.drained = h.drained
      health.forcedBreaker = h.breaker
      health.heldUntil = h.until
    }
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
    const book = this.#deps.overrides
    book?.expire(now)
    for (const e of this.#shedding.tick(rt.routes, now)) this.#deps.emit(e)
    for (const e of this.#adaptive.tick(rt.routes, now)) this.#deps.emit(e)
    for (const route of rt.routes) {
      this.#hold(route)
      const pin = book?.pin(route.config.name) ?? null
      const hedge = route.config.hedge
      if (hedge !== null && hedge.quantile !== null && hedgeTick) route.view.hedgeDelayMs = this.#observed(route.levels[0] ?? [], hedge.quantile)
      const outlier = route.config.outlier
      if (outlier !== null) {
        for (const level of route.levels) for (const e of evaluateOutliers(level.map(u => u.health), outlier, now)) this.#deps.emit(e)
      }
      const cfg = route.config.shift
      const ctrl = cfg === null ? undefined : this.#controllers.get(route.config.name)
      if (cfg === null || ctrl === undefined) {
        route.view.backupShare = pin ?? 0
        continue
      }
      const primaries = route.levels[0] ?? []
      const name = route.config.name
      // Paused by an operator: the controller neither observes nor moves; the share stays as it was (or pinned).
      if (book?.paused(name) === true) {
        let frozen = this.#frozen.get(name)
        if (frozen === undefined) {
          frozen = route.view.backupShare
          this.#frozen.set(name, frozen)
        }
        route.view.backupShare = pin ?? frozen
        continue
      }
      this.#frozen.delete(name)
      const idle = ctrl.view().phase === 'idle'
      const stall = this.#stalled(primaries, now, cfg, this.#baselines.get(name))
      const p = this.#level(primaries, now, cfg, name, idle)
      const b = this.#level(route.backups, now, cfg, null, false)
      const primary = p.latency
      const signs = stall.stalled || (cfg.stall !== null && stall.stuck >= cfg.stall.minStuck) ||
        (primary.valueMs !== null && primary.valueMs > cfg.thresholdMs) ||
        (cfg.errors !== null && p.errors !== null && p.errors > cfg.errors.rate)
      const onset = this.#suspect(route, cfg, now, signs, stall.oldestStartedAt, idle && ctrl.share === 0)
      const events = ctrl.tick({
        now,
        primary,
        backup: b.latency,
        primaryErrors: p.errors,
        backupErrors: b.errors,
        stalled: stall.stalled,
        backupFresh: this.#backupsFresh(route, cfg, onset),
        backupAvailable: route.backups.some(u => u.weight > 0 && u.available),
        primaryHealthy: !primaries.some(u => u.health.probeDown)
      })
      for (const e of events) this.#deps.emit(e)
      const fleet = this.#deps.fleet
      const share = fleet === undefined ? ctrl.share : fleet.merge(route.config.name, ctrl.share, { phase: ctrl.view().phase, primaryMs: primary.valueMs }, now)
      route.view.backupShare = pin ?? (cfg.enforce ? share : 0)
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

  /**
   * A level's latency quantile and failure share. Real traffic first: its
   * finished samples in the signal window plus the ages of what is still in
   * flight. Where real traffic holds too few (backups before an incident, a
   * primary the shift has emptied), the synthetic probes' own window and
   * in-flight probes stand in. `baselineOf` names the route whose healthy
   * p99 to follow (primaries only, and only while `healthy`).
   */
  #level (level: readonly ControlUpstream[], now: number, cfg: ShiftConfig, baselineOf: string | null, healthy: boolean): LevelSignals {
    const h = this.#scratch
    h.reset()
    for (const u of level) u.stats.signal?.mergeInto(h, now)
    if (baselineOf !== null && healthy) this.#followBaseline(baselineOf, h, cfg)
    for (const u of level) addInflightAges(h, u.stats.inflight, now)
    let latency = quantileMs(h, cfg.quantile, cfg.minSamples)
    const minErrors = cfg.errors?.minSamples
    const real = minErrors === undefined ? null : this.#failureRate(level, now, minErrors, false)
    // Unreachable primaries are failover's case: the probes (whose own
    // in-flight probes the dying upstream reset too) must not speak for them.
    const down = real === UNREACHABLE
    let errors = down ? null : real
    if (latency.valueMs !== null && (errors !== null || minErrors === undefined || down)) return { latency, errors }
    if (latency.valueMs === null) {
      h.reset()
      for (const u of level) {
        u.stats.probe?.mergeInto(h, now)
        addInflightAges(h, u.stats.probeInflight, now)
      }
      const probed = quantileMs(h, cfg.quantile, PROBE_MIN_SAMPLES)
      if (probed.valueMs !== null) latency = probed
    }
    if (errors === null && minErrors !== undefined && !down) {
      const probed = this.#failureRate(level, now, PROBE_MIN_SAMPLES, true)
      errors = probed === UNREACHABLE ? null : probed
    }
    return { latency, errors }
  }

  /** The primaries' healthy p99 of finished attempts, followed while the route is idle and fast (the stall signal's yardstick). */
  #followBaseline (route: string, finished: Histogram, cfg: ShiftConfig): void {
    if (finished.totalCount < cfg.minSamples) return
    const p99 = finished.getValueAtPercentile(99) / 1000
    if (p99 >= cfg.recover.thresholdMs) return
    const before = this.#baselines.get(route)
    this.#baselines.set(route, before === undefined ? p99 : before + BASELINE_ALPHA * (p99 - before))
  }

  /**
   * Failed share of a level's finished attempts (each upstream's newest
   * slots holding `min`; probes: their whole window), or null with fewer
   * than `min` of them (probes: none failed but too short a run of good
   * answers, see PROBE_OK_STREAK). UNREACHABLE while connect failures are more
   * than UNREACHABLE_SHARE of them: primaries that refuse connections are down,
   * not erroring, and that is failover's case (retries outside the budget,
   * health checks, the breaker), which brings them back as soon as they
   * answer; the failures of the requests they held when they died would
   * otherwise trip a shift whose ramp-back takes many seconds (and the
   * probes, which the dying upstream reset too, are not asked instead).
   */
  #failureRate (level: readonly ControlUpstream[], now: number, min: number, probes: boolean): number | null | typeof UNREACHABLE {
    const t = this.#tally
    t.done = 0
    t.failed = 0
    t.unreachable = 0
    for (const u of level) (probes ? u.stats.probe : u.stats.signal)?.failures(now, probes ? Infinity : min, t)
    if (t.done < min || t.done === 0) return null
    if (t.unreachable > UNREACHABLE_SHARE * t.done) return UNREACHABLE
    // A probe window holds a handful: "none failed" is word only after a run of good answers.
    if (probes && t.failed === 0) for (const u of level) if (u.stats.probe !== null && u.stats.probeOkStreak < PROBE_OK_STREAK) return null
    return t.failed / t.done
  }

  /**
   * The stall signal: completions from the primaries have nearly stopped
   * while attempts pile up. An attempt is stuck once older than the stuck
   * age: factor × the primaries' healthy p99, kept within [0.4 × threshold,
   * threshold / 2]. Stalled when at least minStuck are stuck and they are
   * STALL_RATIO times as many as the attempts that finished within that
   * age. Traffic that still flows at latency L has (L − age) / age stuck per
   * finished, so it reaches the ratio only at L ≥ 4 × age > threshold, where
   * the quantile breaches anyway: the stall signal only sees such a breach
   * sooner, and a blip shorter than the stuck age has nothing stuck at all.
   * Also returned: how many are stuck, and when the oldest attempt still in
   * flight started (the incident's onset, for #suspect).
   */
  #stalled (level: readonly ControlUpstream[], now: number, cfg: ShiftConfig, baselineMs: number | undefined): StallReading {
    const st = cfg.stall
    let oldest = now
    for (const u of level) {
      const a = u.stats.inflight.first
      if (a !== null && a.startedAt < oldest) oldest = a.startedAt
    }
    if (st === null) return { stalled: false, stuck: 0, oldestStartedAt: oldest }
    const lo = cfg.thresholdMs * 0.4
    const hi = cfg.thresholdMs / 2
    const age = baselineMs === undefined ? hi : Math.min(hi, Math.max(lo, st.factor * baselineMs))
    let stuck = 0
    let finished = 0
    for (const u of level) {
      // Oldest first: stop at the first one younger than the stuck age.
      for (let a = u.stats.inflight.first; a !== null && now - a.startedAt > age; a = a.listNext as typeof a) stuck++
      finished += u.stats.signal?.finishedWithin(now, age) ?? 0
    }
    return { stalled: stuck >= st.minStuck && stuck >= STALL_RATIO * finished, stuck, oldestStartedAt: oldest }
  }

  /**
   * Whether the backups' word is fresh: every backup that can take traffic
   * got a good probe answer to a probe sent after the incident began.
   * Probes come every `probe.interval`, so before an incident the backups'
   * signal may be a second old: a backup that slowed down together with the
   * primary would still look fast, and the first step would go to max onto
   * it. The first sign of trouble (#suspect) therefore probes the backups at
   * once, and until their answers are in, the first step is a trial.
   * (Without probes, or before any sign of trouble: undefined, the signal alone decides.)
   */
  #backupsFresh (route: ControlRoute, cfg: ShiftConfig, onset: number | undefined): boolean | undefined {
    if (cfg.probe === null || this.#deps.latencyProbes === undefined || onset === undefined) return undefined
    for (const u of route.backups) if (u.weight > 0 && u.available && u.stats.probeOkStartedAt < onset) return false
    return true
  }

  /**
   * The first sign of trouble on a route's primaries (stuck attempts, a
   * quantile or failure share over the threshold) latches the incident's
   * onset (when its oldest attempt in flight started) and probes the
   * backups at once, at most once per probe interval. The onset is
   * forgotten once the route is calm and fully on its primaries again.
   */
  #suspect (route: ControlRoute, cfg: ShiftConfig, now: number, signs: boolean, oldestStartedAt: number, idle: boolean): number | undefined {
    const name = route.config.name
    let onset = this.#onsets.get(name)
    if (!signs) {
      if (onset !== undefined && idle) this.#onsets.delete(name)
      return idle ? undefined : onset
    }
    if (onset === undefined) {
      onset = Math.min(now, oldestStartedAt)
      this.#onsets.set(name, onset)
    }
    const probes = this.#deps.latencyProbes
    const last = this.#forcedAt.get(name) ?? -Infinity
    if (probes !== undefined && cfg.probe !== null && now - last >= cfg.probe.intervalMs) {
      const stale: string[] = []
      for (const u of route.backups) if (u.stats.probeOkStartedAt < onset) stale.push(u.config.key)
      if (stale.length > 0 && probes.probeNow(stale) > 0) this.#forcedAt.set(name, now)
    }
    return onset
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
        targets.push({ target: { key: u.config.key, origin: u.config.origin, hostHeader: u.config.hostHeader, tls: u.config.tls }, config: { path: u.config.basePath + hc.path, intervalMs: hc.intervalMs, timeoutMs: hc.timeoutMs, healthyThreshold: hc.healthyThreshold, unhealthyThreshold: hc.unhealthyThreshold } })
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

