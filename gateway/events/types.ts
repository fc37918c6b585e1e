/**
 * The one shape of every state change the gateway reports (breaker,
 * shift, ejection, probe). Shares are fractions 0..1 of a route's traffic.
 */

export type EventKind =
  | 'shift.step' | 'shift.ramp' | 'shift.hold' | 'shift.restored'
  | 'breaker.open' | 'breaker.halfOpen' | 'breaker.close'
  | 'outlier.eject' | 'outlier.return'
  | 'probe.flip'
  | 'attempt.failed'
  | 'policy.reload' | 'policy.rejected'
  | 'override.set' | 'override.cleared' | 'override.expired'
  | 'overload.shedding' | 'overload.cleared' | 'overload.limit'

/** What a decision-maker emits; the event log adds seq, times and the policy version. */
export interface EventDraft {
  readonly kind: EventKind
  readonly route: string
  readonly upstream?: string
  /** Backup share (shift) or other before → after values. */
  readonly before?: number | string
  readonly after?: number | string
  /** The measured value that caused it (ms for latency, fraction for rates). */
  readonly measured?: number
  readonly threshold?: number
  /** False when decided in shadow mode (reported, not applied). */
  readonly enforced: boolean
  readonly detail: string
}

export interface GatewayEvent extends EventDraft {
  readonly seq: number
  /** Wall-clock time, ISO 8601. */
  readonly at: string
  /** Monotonic clock time in ms (same clock as the controllers). */
  readonly t: number
  readonly policyVersion: string
}
