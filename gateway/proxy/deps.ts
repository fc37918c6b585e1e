/**
 * Types the proxy's files share: what the handler is given by the
 * composition root, and what a request is asked to do (its spec) and
 * reports at its end (its completion). Kept apart so handler, request and
 * idempotent import this, not each other.
 */
import type { Readable } from 'node:stream'
import type { Clock } from '../core/clock.js'
import type { AttemptFailure } from '../delivery/failure.js'
import type { StoredResponse } from '../idempotency/types.js'
import type { UploadGuard } from '../edge/upload-guard.js'
import type { Runtime } from './runtime.js'
import type { DeadlineSweeper } from './deadlines.js'

export interface AttemptFailedInfo {
  readonly route: string
  readonly upstream: string
  readonly requestId: string
  readonly method: string
  readonly failure: AttemptFailure
  /** What was done about it, and why ("retrying in 12ms", "not retried: …"). */
  readonly decision: string
  readonly cause: unknown
}

export interface HandlerDeps {
  readonly clock: Clock
  readonly sweeper: DeadlineSweeper
  /** Watches request bodies for slow clients (one for the gateway). */
  readonly uploads: UploadGuard
  /** 0..1; injected so tests can fix the retry jitter. */
  readonly random: () => number
  /** The runtime to use for a request that starts now. */
  readonly current: () => Runtime
  readonly onAttemptFailed: (info: AttemptFailedInfo) => void
  readonly onInternalError: (err: unknown, requestId: string) => void
}

/** What the request's owner (idempotent.ts) wants to know about the end. */
export interface Completion {
  /** The response sent (or, with the client gone, received), when it fit the capture limit. */
  readonly response: StoredResponse | null
  /** The final failure, when there was no response. */
  readonly failure: AttemptFailure | null
  /** Some attempt may have reached the upstream. */
  readonly maybeSent: boolean
}

export interface RequestSpec {
  readonly method: string
  /** Path sent upstream, before the upstream's base path. */
  readonly path: string
  /** Forwarding headers without Host (added per attempt). */
  readonly headers: string[]
  /** null = no body; Buffer = kept for replay; Readable = streamed once. */
  readonly body: Readable | Buffer | null
  /** The client sent a body (Content-Length > 0 or chunked), read or not yet. */
  readonly hasBody: boolean
  readonly requestId: string
  /** The client's Host header (sent upstream when preserveHost). */
  readonly clientHost: string
  /** ms; Infinity = no deadline. */
  readonly totalMs: number
  /** Capture the response body up to this many bytes for the store (0 = no capture). */
  readonly captureBytes: number
  /** Keyed request whose upstream dedupes the key: may be retried after "maybe processed". */
  readonly keyedAndDeduped: boolean
  /** Keep the attempt running if the client leaves (its outcome is stored for the repeat). */
  readonly outliveClient: boolean
  readonly onComplete: ((c: Completion) => void) | null
}

