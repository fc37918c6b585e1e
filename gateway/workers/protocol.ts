/**
 * The messages between the primary process and its workers (`gateway run
 * --workers N`), over Node's cluster IPC channel with advanced
 * serialization (Buffers pass as bytes). Requests carry an id; the answer
 * carries the same id.
 */
import type { EventDraft } from '../events/types.js'
import type { ShareReport } from '../fleet/bus.js'
import type { ReloadRecord } from '../policy/reload-record.js'
import type { OverrideRequest } from '../control/overrides.js'

export interface StoreOp {
  readonly route: string
  readonly ttlMs: number
  readonly maxKeys: number
  readonly op: 'begin' | 'complete' | 'release' | 'wait'
  readonly args: readonly unknown[]
}

export type ToPrimary =
  | { readonly t: 'store', readonly id: number, readonly store: StoreOp }
  | { readonly t: 'fleet', readonly reports: readonly ShareReport[] }
  | { readonly t: 'event', readonly event: EventDraft }
  | { readonly t: 'answer', readonly id: number, readonly value: unknown }
  | { readonly t: 'ready' }
  /** The worker could not start (a port in use, an invalid policy): why, safe to print. */
  | { readonly t: 'failed', readonly detail: string }

export type ToWorker =
  | { readonly t: 'answer', readonly id: number, readonly value: unknown, readonly error?: string }
  | { readonly t: 'fleet', readonly reports: readonly ShareReport[] }
  | { readonly t: 'status', readonly id: number }
  | { readonly t: 'metrics', readonly id: number }
  | { readonly t: 'reload', readonly id: number, readonly trigger: ReloadRecord['trigger'] }
  /** An operator's override: set (with the primary's id, so every worker holds the same one), clear, list. */
  | { readonly t: 'override', readonly id: number, readonly op: 'set', readonly req: OverrideRequest, readonly overrideId: string }
  | { readonly t: 'override', readonly id: number, readonly op: 'clear', readonly overrideId: string }
  | { readonly t: 'override', readonly id: number, readonly op: 'list' }
  | { readonly t: 'drain' }

export const isMessage = (m: unknown): m is { t: string } => typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string'
