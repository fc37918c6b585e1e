/**
 * The seam between the data plane and the control plane ("record on the hot
 * path, decide off it"):
 *
 * - an attempt reports what happened into its upstream's OutcomeSink and
 *   nothing else (health/recorder.ts is the one implementation);
 * - the data plane reads RouteView (backup share, hedge delay) and the
 *   upstream's availability; the control plane — the control loop, fleet
 *   sync, overrides — writes through the same views and never touches a
 *   request, a pool or the proxy's runtime objects;
 * - the control plane sees routes as ControlRoute: configuration plus what
 *   was recorded (stats, health) and the view it may write.
 */
import type { AdmissionConfig, RouteConfig, UpstreamConfig } from '../policy/snapshot.js'
import type { InflightAttempt } from '../health/outcome.js'
import type { BreakerTicket } from '../health/breaker.js'
import type { UpstreamStats } from '../health/upstream-stats.js'
import type { UpstreamHealth } from '../health/upstream-health.js'
import type { RouteView } from './route-view.js'
import type { ResponseTally } from '../core/response-tally.js'

export type { RouteView }

/** Where an attempt reports to. `begin` returns the breaker ticket to hand back to `end`. */
export interface OutcomeSink {
  begin (attempt: InflightAttempt): BreakerTicket | null
  /** `outcome` is an OUTCOME_INDEX; `sample` false keeps the latency out (client abort); `status` 0 without a response. */
  end (attempt: InflightAttempt, ticket: BreakerTicket | null, outcome: number, sample: boolean, status: number): void
}

/** One upstream of a route as the control plane sees it. `health` is its availability view. */
export interface ControlUpstream {
  readonly config: UpstreamConfig
  readonly weight: number
  readonly available: boolean
  readonly stats: UpstreamStats
  readonly health: UpstreamHealth
}

export interface ControlRoute {
  readonly config: RouteConfig
  readonly upstreams: readonly ControlUpstream[]
  /** By priority level, lowest (the primaries) first. */
  readonly levels: ReadonlyArray<readonly ControlUpstream[]>
  /** Every upstream above the primary level. */
  readonly backups: readonly ControlUpstream[]
  readonly view: RouteView
  /** What the route's clients got (status classes, gateway error codes), as recorded when responses close. */
  readonly delivery: { readonly responses: ResponseTally }
  /** Admission counters (admission/gate.ts), read by the control plane; null without an admission block. */
  readonly admission: AdmissionView | null
}

/** What the control plane reads of a route's admission gate. */
export interface AdmissionView {
  readonly config: AdmissionConfig
  readonly inflight: number
  /** The limit in force, and what the control plane reads and resets each evaluation (adaptive limits). */
  readonly limit: number
  heldCount: number
  heldMs: number
  peakInflight: number
  setLimit (limit: number): void
  readonly waiting: number
  readonly admitted: number
  readonly queued: number
  readonly refused: Readonly<Record<'queueFull' | 'queueTimeout', number>>
}

/** What the control plane is handed on start and on every reload. */
export interface ControlTarget {
  readonly routes: readonly ControlRoute[]
}
