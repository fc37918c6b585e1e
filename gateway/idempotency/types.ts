/**
 * The idempotency store contract. In memory for one instance
 * (memory-store.ts), in Redis for a fleet (redis-store.ts): every method is
 * async and `begin` must be atomic (one caller wins a key, everybody else
 * learns its state). A store that cannot answer (Redis down, a command timed
 * out) rejects with StoreUnavailableError (errors.ts).
 */

/** A final response, kept to be replayed. Header values as sent to the client. */
export interface StoredResponse {
  readonly status: number
  readonly headers: ReadonlyArray<readonly [string, string]>
  /** In memory the Buffer itself is kept; Redis stores the raw bytes (binary-safe) and returns a copy. */
  readonly body: Buffer
}

/** What a key's first request ended as. */
export type Outcome =
  | { readonly kind: 'response', readonly response: StoredResponse }
  /** Failed after the request may have been processed (reset/timeout after it was written, 5xx without a stored body): outcome unknown. */
  | { readonly kind: 'unknown', readonly code: string, readonly detail: string }

export type BeginResult =
  /** This caller owns the key: forward the request, then complete() or release() with this token. */
  | { readonly state: 'owner', readonly token: string }
  /** Same key, same fingerprint, finished: replay. */
  | { readonly state: 'done', readonly outcome: Outcome }
  /** Same key, same fingerprint, still in flight elsewhere. */
  | { readonly state: 'in-flight' }
  /** Same key, different request. */
  | { readonly state: 'mismatch' }

export interface IdempotencyStore {
  /** Claim `key` for a request with `fingerprint`, or learn what happened to it. */
  begin (key: string, fingerprint: string): Promise<BeginResult>
  /**
   * The owner's request finished: keep its outcome for the TTL and wake
   * waiters. With the owner's token it is fenced: an owner whose claim was
   * lost (evicted, expired) cannot overwrite a newer owner's claim, and an
   * evicted key is stored again under the token's fingerprint.
   */
  complete (key: string, outcome: Outcome, token?: string): Promise<void>
  /** The owner's request was provably never sent: forget the key so a repeat may try again; wake waiters. Fenced by the token like complete(). */
  release (key: string, token?: string): Promise<void>
  /**
   * Wait until `key` is completed or released, at most `ms`. Resolves with the
   * outcome, with 'released' (then the caller may begin() again), or 'timeout'.
   */
  wait (key: string, ms: number): Promise<Outcome | 'released' | 'timeout'>
  close (): Promise<void>
}
