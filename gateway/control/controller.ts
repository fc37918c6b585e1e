/**
 * The latency-triggered traffic-shift controller of one route: a pure state
 * machine (no I/O, no timers, time passed in) so that tests and the future
 * policy simulator drive it with a virtual clock.
 *
 * Input each tick, for the primaries and for the backups: the latency
 * quantile (in-flight requests counted at their current age), the failure
 * share, and for the primaries whether they have stalled (completions
 * stopped while requests pile up). Any of the three trips; all three must
 * be calm to ramp back. Output: the share of the route's traffic to send to
 * the backups, plus events.
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
 * that are unavailable (hold); the first step goes straight to max when the
 * backups are known good (fast and not failing, by probes or traffic),
 * else it is a trial step whose outcome is awaited; in shadow mode the same decisions are made and
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
  /** Failed share of the primaries' / backups' finished attempts; null (or absent) without enough of them. */
  readonly primaryErrors?: number | null
  readonly backupErrors?: number | null
  /** The primaries' completions have stopped while attempts pile up (loop.ts). */
  readonly stalled?: boolean
  /**
   * Whether the backups' probes answered since the incident began (loop.ts):
   * false keeps them from counting as known good on an older word; true is
   * word as good as a trial's outcome. Absent: no probes, the signal alone.
   */
  readonly backupFresh?: boolean
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
  /** The primaries' failure share at the last tick (null: too few attempts). */
  readonly lastErrorRate: number | null
  /** Whether the primaries looked stalled at the last tick. */
  readonly stalled: boolean
}

const EPS = 1e-9
/** Margin on the evidence waits after a trial step (see #stepUp). */
const EVIDENCE_MARGIN = 1.1
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
  /**
   * After a trial step: before #evidenceAt the trial's requests are too
   * young to show the backups below recover.threshold, before #fullEvidenceAt
   * too young to show them over the threshold (see #stepUp).
   */
  #evidenceAt = -Infinity
  #fullEvidenceAt = -Infinity
  /** The failure rate tripped (or fed) this episode: ramping back needs word that it has dropped. */
  #errorEpisode = false
  /** The last step was a trial (its outcome awaited). */
  #trial = false
  #lastSignal: number | null = null
  #lastBackup: number | null = null
  #lastErrors: number | null = null
  #lastStalled = false
  /** What tripped, for the step events. */
  #reason = ''

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
      lastBackupSignalMs: this.#lastBackup,
      lastErrorRate: this.#lastErrors === null ? null : round(this.#lastErrors),
      stalled: this.#lastStalled
    }
  }

  tick (input: ShiftInput): EventDraft[] {
    const c = this.#cfg
    const { now, primary } = input
    this.#lastSignal = primary.valueMs
    this.#lastBackup = input.backup.valueMs
    const events: EventDraft[] = []
    const errors = input.primaryErrors ?? null
    const errorBreach = c.errors !== null && errors !== null && errors > c.errors.rate
    const stalled = input.stalled === true
    this.#lastErrors = errors
    this.#lastStalled = stalled
    // Too few samples is no evidence either way: keep every dwell running.
    // (At a small probe share the window hovers around minSamples; resetting
    // the calm dwell on each gap would keep a healed route from ramping back.)
    if (primary.valueMs === null && !errorBreach && !stalled) return events
    const slow = primary.valueMs !== null && primary.valueMs > c.thresholdMs
    // Likewise after an error trip, while too few attempts say whether the
    // failures stopped (a primary the shift has emptied, its probes between
    // samples): without that word, calm cannot begin or end.
    if (this.#errorEpisode && errors === null && !slow && !stalled && this.#share > 0) return events
    const breach = slow || errorBreach || stalled
    const calm = primary.valueMs !== null && primary.valueMs < c.recover.thresholdMs && input.primaryHealthy && !stalled &&
      (c.errors === null || errors === null || errors < c.errors.recoverRate)
    this.#reason = slow ? `${c.quantile} ${fmt(primary.valueMs)}ms > ${c.thresholdMs}ms` : stalled ? 'primaries stalled (requests piling up, none coming back)' : `failure rate ${pct(errors ?? 0)} > ${pct(c.errors?.rate ?? 0)}`

    if (this.#restoredAt !== null && this.#share === 0 && now - this.#restoredAt >= c.recover.maxForMs) {
      this.#trips = 0 // long enough fully restored: forget earlier trips
      this.#restoredAt = null
    }

    if (breach) {
      if (errorBreach) this.#errorEpisode = true
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
    const backupErrors = input.backupErrors ?? null
    const backupFailing = c.errors !== null && backupErrors !== null && backupErrors > c.errors.rate
    if (!input.backupAvailable || backupSlow || backupFailing) {
      if (!this.#holding) {
        this.#holding = true
        const why = backupSlow
          ? `backups are slow too (${this.#cfg.quantile} ${fmt(backup.valueMs)}ms > ${c.thresholdMs}ms): not shifting onto them`
          : backupFailing ? `backups are failing too (${pct(backupErrors ?? 0)} > ${pct(c.errors?.rate ?? 0)}): not shifting onto them` : 'no backup is available: not shifting'
        events.push(this.#event('shift.hold', this.#share, this.#share, backupSlow ? backup.valueMs ?? undefined : undefined, why))
      }
      this.#phase = 'holding'
      return
    }
    this.#holding = false
    const firstOfEpisode = this.#phase !== 'shifting' && this.#phase !== 'holding'
    // Backups known good need no trial: the first step goes all the way to
    // max. Known good = fast (below recover.threshold) and not failing, by
    // their probes or traffic, with word sent since the incident began
    // (backupFresh: a backup that slowed down together with the primary
    // must not look fast on its last probe from before; fresh fast word
    // needs no further wait).
    // Otherwise the first step is a trial of `step`, and its outcome is
    // awaited: the real requests it sends are young, and young ages look
    // fast whatever the backups' speed. The quantile q of their ages passes
    // recover.threshold after recover.threshold/q, the threshold after
    // threshold/q (p95: 1.05 T; the waits below add a tenth as margin).
    // Before the first, no step; between the two, only a known-good step
    // (to max); after the second, steps of `step` while the backups stay
    // under the threshold. (Shadow mode sends the backups nothing, so no
    // evidence can come: it reports as if they were fine.)
    const fresh = input.backupFresh
    const knownGood = (now >= this.#evidenceAt || fresh === true) && fresh !== false && backup.valueMs !== null && backup.valueMs < c.recover.thresholdMs &&
      (c.errors === null || backupErrors === null || backupErrors < c.errors.recoverRate)
    if (c.enforce && !knownGood && this.#evidenceAt !== -Infinity && (now < this.#fullEvidenceAt || backup.valueMs === null)) return
    // A trial step that turned out known good moves at once; other steps keep the interval.
    if (!firstOfEpisode && !(knownGood && this.#trial) && now - this.#lastMoveAt < c.intervalMs) return
    if (c.enforce && (backup.valueMs === null || (firstOfEpisode && !knownGood))) {
      const q = QUANTILE_FRACTION[c.quantile]
      this.#evidenceAt = now + EVIDENCE_MARGIN * c.recover.thresholdMs / q
      this.#fullEvidenceAt = now + EVIDENCE_MARGIN * c.thresholdMs / q
      this.#trial = true
    } else {
      this.#trial = false
    }
    if (firstOfEpisode) {
      // Every trip until the count is forgotten (maxFor fully restored)
      // lengthens the next recovery dwell: a route that flaps waits longer.
      this.#trips++
      this.#trippedAt = now
      this.#restoredAt = null
    }
    const before = this.#share
    this.#share = round(knownGood ? c.max : Math.min(c.max, before + c.step))
    this.#lastMoveAt = now
    this.#phase = 'shifting'
    this.#rampSteps = 0
    events.push(this.#event('shift.step', before, this.#share, primary.valueMs ?? undefined,
      `${this.#reason}${firstOfEpisode ? ` for ${c.forMs}ms: trip #${this.#trips}` : ''}; moving ${pct(this.#share)} to backups${knownGood ? ' (backups known good)' : ''}`))
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
      this.#fullEvidenceAt = -Infinity
      this.#trial = false
      this.#errorEpisode = false
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
