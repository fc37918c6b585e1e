/**
 * Requests with an idempotency key (IETF draft): the first with a key is
 * forwarded and its final outcome stored; a repeat with the same key and the
 * same fingerprint replays it (marked `idempotency-replayed: true`), except
 * an upstream 429, which releases the key; a repeat
 * while the first is in flight waits for it (bounded, then 409); a repeat with
 * a different request gets 422. A first request that may have been processed
 * but gave no answer is stored as "outcome unknown": repeats get 409 (or the
 * same error again), never a second trip upstream. Only a request provably
 * never sent, or refused by the upstream with 429, releases its key.
 */
import type { ServerResponse } from 'node:http'
import { ERRORS, type ErrorSpec } from '../core/errors.js'
import type { IdempotencyConfig } from '../policy/snapshot.js'
import type { IdempotencyStore, Outcome } from '../idempotency/types.js'
import { fingerprint } from '../idempotency/fingerprint.js'
import { StoreUnavailableError } from '../idempotency/errors.js'
import type { DeliveryCounters } from '../delivery/route-delivery.js'
import type { Completion } from './deps.js'
import { sendProblem } from '../edge/problem.js'
import { REPLAYED, tagBytesOut, tagFlag } from '../edge/response-tag.js'

export const REPLAY_HEADER = 'idempotency-replayed'
const SAFE_KEY = /^[\x21-\x7e]{1,255}$/

export interface KeyedContext {
  readonly res: ServerResponse
  readonly store: IdempotencyStore
  readonly cfg: IdempotencyConfig
  readonly counters: DeliveryCounters
  readonly key: string
  /** What makes a repeat "the same request"; null = method, target and body (client keys). */
  readonly fingerprint: string | null
  readonly method: string
  readonly target: string
  readonly body: Buffer | null
  readonly requestId: string
  readonly route: string
}

/**
 * The fingerprint of every derived key (idempotency.keyFrom): requests with
 * the same parts are the same message by definition, so a repeat whose
 * other fields differ is replayed, never refused with 422.
 */
export const DERIVED_FINGERPRINT = 'keyFrom'

export const validKey = (key: string): boolean => SAFE_KEY.test(key)

/**
 * Claims the key or answers from the store. Calls `forward` (with the
 * completion hook to record the outcome) only when this request owns the key.
 */
export async function runKeyed (ctx: KeyedContext, forward: (onComplete: (c: Completion) => void) => void): Promise<void> {
  try {
    await claimAndRun(ctx, forward)
  } catch (err) {
    if (!(err instanceof StoreUnavailableError)) throw err
    // No claim, so not forwarded: the client may repeat it with the same key.
    ctx.counters.storeUnavailable++
    sendProblem(ctx.res, ERRORS.IDEMPOTENCY_STORE_UNAVAILABLE, { requestId: ctx.requestId, route: ctx.route, retryAfterSeconds: 1, detail: 'the request was not sent upstream; repeat it with the same key' })
  }
}

async function claimAndRun (ctx: KeyedContext, forward: (onComplete: (c: Completion) => void) => void): Promise<void> {
  const fp = ctx.fingerprint ?? fingerprint(ctx.method, ctx.target, ctx.body)
  for (let round = 0; round < 3; round++) {
    const r = await ctx.store.begin(ctx.key, fp)
    if (r.state === 'owner') {
      const token = r.token
      forward(c => { void record(ctx, c, token) })
      return
    }
    if (r.state === 'mismatch') {
      ctx.counters.mismatches++
      problem(ctx, ERRORS.IDEMPOTENCY_MISMATCH, 'this key was first used with a different method, path or body')
      return
    }
    if (r.state === 'done') {
      replay(ctx, r.outcome)
      return
    }
    ctx.counters.waited++
    const w = await ctx.store.wait(ctx.key, ctx.cfg.waitForMs)
    if (w === 'timeout') {
      ctx.counters.conflicts++
      problem(ctx, ERRORS.IDEMPOTENCY_IN_FLIGHT, `the first request with this key did not finish within ${ctx.cfg.waitForMs}ms`)
      return
    }
    if (w !== 'released') {
      replay(ctx, w)
      return
    }
    // released: the first was never sent; claim the key ourselves
  }
  ctx.counters.conflicts++
  problem(ctx, ERRORS.IDEMPOTENCY_IN_FLIGHT, 'the key keeps being claimed by other requests')
}

async function record (ctx: KeyedContext, c: Completion, token: string): Promise<void> {
  try {
    // 429 is the upstream refusing the request, not running it (RFC 6585):
    // replaying it for the whole ttl would keep a throttled message or charge
    // from ever going out, so the key is released for the sender's retry.
    if (c.response !== null && c.response.status === 429) await ctx.store.release(ctx.key, token)
    else if (c.response !== null) await ctx.store.complete(ctx.key, { kind: 'response', response: c.response }, token)
    else if (!c.maybeSent) await ctx.store.release(ctx.key, token)
    else {
      const code = c.failure?.spec?.code ?? 'GW_ERR_UPSTREAM_RESET'
      const detail = c.failure === null ? 'the response was too large to store, or the exchange was cut' : c.failure.detail
      await ctx.store.complete(ctx.key, { kind: 'unknown', code, detail }, token)
    }
  } catch {
    // A store that fails must not fail the request that already got its answer.
  }
}

function replay (ctx: KeyedContext, outcome: Outcome): void {
  if (outcome.kind === 'unknown') {
    ctx.counters.conflicts++
    if (ctx.cfg.onUnknownOutcome === 'replay') {
      const spec = Object.values(ERRORS).find(e => e.code === outcome.code) ?? ERRORS.UPSTREAM_RESET
      problem(ctx, spec, `replayed: ${outcome.detail}`)
    } else {
      problem(ctx, ERRORS.IDEMPOTENCY_OUTCOME_UNKNOWN, `the first request with this key may have been processed (${outcome.detail}); it is not sent again`)
    }
    return
  }
  ctx.counters.replays++
  const r = outcome.response
  const headers: string[] = []
  for (const [k, v] of r.headers) {
    const lower = k.toLowerCase()
    if (lower === 'x-request-id' || lower === 'content-length' || lower === REPLAY_HEADER) continue
    headers.push(k, v)
  }
  headers.push('content-length', String(r.body.length), 'x-request-id', ctx.requestId, REPLAY_HEADER, 'true')
  if (ctx.res.destroyed) return
  tagFlag(ctx.res, REPLAYED)
  tagBytesOut(ctx.res, r.body.length)
  ctx.res.writeHead(r.status, headers)
  ctx.res.end(r.body)
}

function problem (ctx: KeyedContext, spec: ErrorSpec, detail: string): void {
  sendProblem(ctx.res, spec, { requestId: ctx.requestId, route: ctx.route, detail })
}
