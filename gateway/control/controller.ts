/**
 * The latency-triggered traffic-shift controller of one route: a pure state
 * machine (no I/O, no timers, time passed in) so that tests and the future
 * policy simulator drive it with a virtual clock.
 *
 * Input each tick: the primaries' latency quantile (in-flight requests
 * counted at their current age) and the backups' own quantile. Output: the
 * share of the route's traffic to send to the backups, plus events.
 *
 *   idle ──breach for `for`──▶ shifting (step every `interval` up to max)
 *     ▲                              │ calm (< recover.threshold) for the
 *     │                              ▼ recovery dwell, after the cooldown
 *     └──── share reaches 0 ◀── ramping (recover.step every recover.interval)
 *
 * Rails: the primaries keep minShare (max ≤ 1 − minShare); between the two
 * thresholds nothing moves (hysteresis); a breach during ramp-back resumes
 * shifting from the current share; each trip that follows a ramp-back doubles
 * the recovery dwell (up to recover.maxFor; forgotten after maxFor fully
 * restored); no step onto backups whose own signal breaches the threshold or
 * that are unavailable (hold); in shadow mode the same decisions are made and
 * reported with enforced: false, and the caller applies nothing.
 */
import type { ShiftConfig } from '../policy/snapshot.js'
import type { EventDraft } from '../events/types.js'

export interface Signal {
  /** Quantile in ms, or null when the window holds fewer than minSamples. */
  readonly valueMs: number | null
  readonly samples: number
}

export interface ShiftInput {
  readonly now: number
  readonly primary: Signal
  readonly backup: Signal
  /** Some backup can take traffic (available, not ejected, breaker not open). */
  readonly backupAvailable: boolean
  /** Active health checks say the primaries are up (true when none are configured). */
  readonly primaryHealthy: boolean
}

export type ShiftPhase = 'idle' | 'breached' | 'shifting' | 'holding' | 'calming' | 'ramping'

export interface ShiftView {
  readonly phase: ShiftPhase
  readonly share: number
  readonly enforce: boolean
  readonly trips: number
  readonly requiredCalmMs: number
  readonly lastSignalMs: number | null
  readonly lastBackupSignalMs: number | null
}

const EPS = 1e-9
const QUANTILE_FRACTION = { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99 } as const

export class ShiftController {
  #cfg: ShiftConfig
  readonly #route: string
  #share = 0
  #phase: ShiftPhase = 'idle'
  #breachSince: number | null = null
  #calmSince: number | null = null
  #lastMoveAt = -Infinity
  #trippedAt = -Infinity
  #trips = 0
  #rampSteps = 0
  #restoredAt: number | null = null
  #holding = false
  /** Before this time the backups' signal cannot show a breach yet (set by a trial step onto unmeasured backups). */
  #evidenceAt = -Infinity
  #lastSignal: number | null = null
  #lastBackup: number | null = null

  constructor (route: string, cfg: ShiftConfig) {
    this.#route = route
    this.#cfg = cfg
  }

  /** Adopt a reloaded configuration, keeping the current share (clamped to the new max). */
  reconfigure (cfg: ShiftConfig): void {
    this.#cfg = cfg
    if (this.#share > cfg.max) this.#share = cfg.max
  }

  get share (): number { return this.#share }

  view (): ShiftView {
    return {
      phase: this.#phase,
      share: round(this.#share),
      enforce: this.#cfg.enforce,
      trips: this.#trips,
      requiredCalmMs: this.#requiredCalm(),
      lastSignalMs: this.#lastSignal,
      lastBackupSignalMs: this.#lastBackup
    }
  }

  tick (input: ShiftInput): EventDraft[] {
    const c = this.#cfg
    const { now, primary } = input
    this.#lastSignal = primary.valueMs
    this.#lastBackup = input.backup.valueMs
    const events: EventDraft[] = []
    // Too few samples is no evidence either way: keep every dwell running.
    // (At a small probe share the window hovers around minSamples; resetting
    // the calm dwell on each gap would keep a healed route from ramping back.)
    if (primary.valueMs === null) return events
    const breach = primary.valueMs > c.thresholdMs
    const calm = primary.valueMs < c.recover.thresholdMs && input.primaryHealthy

    if (this.#restoredAt !== null && this.#share === 0 && now - this.#restoredAt >= c.recover.maxForMs) {
      this.#trips = 0 // long enough fully restored: forget earlier trips
      this.#restoredAt = null
    }

    if (breach) {
      this.#calmSince = null
      this.#breachSince ??= now
      if (now - this.#breachSince < c.forMs) {
        if (this.#phase === 'idle' || this.#phase === 'calming') this.#phase = 'breached'
        return events
      }
      this.#stepUp(input, events)
      return events
    }

    this.#breachSince = null
    this.#holding = false
    if (!calm) {
      // Between the thresholds: hold still; the calm dwell restarts.
      this.#calmSince = null
      if (this.#phase === 'breached') this.#phase = this.#share > 0 ? 'shifting' : 'idle'
      return events
    }
    if (this.#share <= 0) {
      this.#phase = 'idle'
      return events
    }
    this.#calmSince ??= now
    if (now - this.#trippedAt < c.cooldownMs || now - this.#calmSince < this.#requiredCalm()) {
      if (this.#phase !== 'ramping') this.#phase = 'calming'
      return events
    }
    if (this.#phase === 'ramping' && now - this.#lastMoveAt < c.recover.intervalMs) return events
    this.#rampDown(now, primary, events)
    return events
  }

  #stepUp (input: ShiftInput, events: EventDraft[]): void {
    const c = this.#cfg
    const { now, primary, backup } = input
    if (this.#share >= c.max - EPS) {
      this.#phase = 'shifting'
      return
    }
    const backupSlow = backup.valueMs !== null && backup.valueMs > c.thresholdMs
    if (!input.backupAvailable || backupSlow) {
      if (!this.#holding) {
        this.#holding = true
        events.push(this.#event('shift.hold', this.#share, this.#share, backupSlow ? backup.valueMs ?? undefined : undefined,
          backupSlow ? `backups are slow too (${this.#cfg.quantile} ${fmt(backup.valueMs)}ms > ${c.thresholdMs}ms): not shifting onto them` : 'no backup is available: not shifting'))
      }
      this.#phase = 'holding'
      return
    }
    this.#holding = false
    const firstOfEpisode = this.#phase !== 'shifting' && this.#phase !== 'holding'
    if (!firstOfEpisode && now - this.#lastMoveAt < c.intervalMs) return
    // Backups without samples are unmeasured: the first step is a trial.
    // Whether they are slower than the threshold shows only once enough of
    // their requests have been out that long: the quantile q of ages passes
    // T after T/q (p95: 1.05 T, p50: 2 T). Until then, and until they have
    // a signal at all, no further step. (Shadow mode sends the backups
    // nothing, so no evidence can come: it reports as if they were fine.)
    if (c.enforce && this.#evidenceAt !== -Infinity && (now < this.#evidenceAt || backup.valueMs === null)) return
    if (c.enforce && backup.valueMs === null) this.#evidenceAt = now + c.thresholdMs / QUANTILE_FRACTION[c.quantile]
    if (firstOfEpisode) {
      // Every trip until the count is forgotten (maxFor fully restored)
      // lengthens the next recovery dwell: a route that flaps waits longer.
      this.#trips++
      this.#trippedAt = now
      this.#restoredAt = null
    }
    const before = this.#share
    this.#share = round(Math.min(c.max, before + c.step))
    this.#lastMoveAt = now
    this.#phase = 'shifting'
    this.#rampSteps = 0
    events.push(this.#event('shift.step', before, this.#share, primary.valueMs ?? undefined,
      `${c.quantile} ${fmt(primary.valueMs)}ms > ${c.thresholdMs}ms${firstOfEpisode ? ` for ${c.forMs}ms: trip #${this.#trips}` : ''}; moving ${pct(this.#share)} to backups`))
  }

  #rampDown (now: number, primary: Signal, events: EventDraft[]): void {
    const c = this.#cfg
    const step = c.recover.curve === 'exponential' ? c.recover.step * 2 ** this.#rampSteps : c.recover.step
    const before = this.#share
    this.#share = round(Math.max(0, before - step))
    this.#rampSteps++
    this.#lastMoveAt = now
    this.#phase = this.#share === 0 ? 'idle' : 'ramping'
    events.push(this.#event('shift.ramp', before, this.#share, primary.valueMs ?? undefined,
      `${c.quantile} ${fmt(primary.valueMs)}ms < ${c.recover.thresholdMs}ms; moving back, ${pct(this.#share)} left on backups`, c.recover.thresholdMs))
    if (this.#share === 0) {
      this.#restoredAt = now
      this.#rampSteps = 0
      this.#evidenceAt = -Infinity
      events.push(this.#event('shift.restored', before, 0, primary.valueMs ?? undefined, 'all traffic back on the primaries', c.recover.thresholdMs))
    }
  }

  #requiredCalm (): number {
    const r = this.#cfg.recover
    return Math.min(r.maxForMs, r.forMs * 2 ** Math.max(0, this.#trips - 1))
  }

  #event (kind: EventDraft['kind'], before: number, after: number, measured: number | undefined, detail: string, threshold = this.#cfg.thresholdMs): EventDraft {
    return { kind, route: this.#route, before: round(before), after: round(after), measured: measured === undefined ? undefined : round(measured), threshold, enforced: this.#cfg.enforce, detail }
  }
}

const round = (x: number): number => Math.round(x * 10_000) / 10_000
const fmt = (ms: number | null): string => ms === null ? '-' : String(Math.round(ms))
const pct = (x: number): string => `${Math.round(x * 100)}%`
