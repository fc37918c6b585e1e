/**
 * Open-loop load at a fixed rate: request i is due at `i / rate` seconds and
 * goes out then, whether or not earlier ones have answered. Latency is timed
 * from that intended moment, not from when the request was actually written,
 * so a stalled upstream cannot slow the sender down and hide its own delay
 * (coordinated omission). Bounded in count (rate × duration) and in time
 * (duration + the per-request timeout).
 */
import { performance } from 'node:perf_hooks'
import { Agent, type Dispatcher } from 'undici'

/** What happened to one request. */
export interface RequestResult {
  /** 0-based position in the schedule. */
  readonly seq: number
  /** When it was due, in ms since the schedule's start. */
  readonly intendedMs: number
  /** From the intended moment to the end of the response body (or the error), in ms. */
  readonly latencyMs: number
  /** HTTP status; 0 when no response arrived. */
  readonly status: number
  /** Transport error code (undici `UND_ERR_*`, `ECONNREFUSED`…) when no response arrived. */
  readonly error?: string
  /** The `x-gateway-upstream` header: which upstream served it. */
  readonly upstream?: string
}

/** Options of {@link runOpenLoop}. */
export interface OpenLoopOptions {
  /** Origin to send to, e.g. `http://127.0.0.1:8080`. */
  readonly url: string
  readonly ratePerSec: number
  /** Sending stops after this long; answers are still awaited (up to `timeoutMs`). */
  readonly durationMs: number
  /** @default 'POST' */
  readonly method?: Dispatcher.HttpMethod
  /** @default '/pay/checkout' */
  readonly path?: string
  /** Sent as `application/json`; null sends no body and no content-type (a plain GET). @default '{"amount":42}' */
  readonly body?: string | null
  /**
   * Extra headers for request `seq` (e.g. a unique `Idempotency-Key`), merged
   * over the default content-type. Without it every request is the same.
   */
  readonly headers?: (seq: number) => Record<string, string>
  /**
   * Most connections to `url`. Must exceed rate × worst latency, or requests
   * queue in the client (still timed from their intended moment, but they
   * reach the gateway late). 200 req/s × 5 s = 1000. @default 2048
   */
  readonly connections?: number
  /** Per request, for the headers and for each body gap. @default 30000 */
  readonly timeoutMs?: number
  /** `performance.now()` value the schedule counts from, to share a clock with the caller. @default now */
  readonly startAt?: number
  /** Stops sending (requests already out are still awaited); results then cover only what was sent. */
  readonly signal?: AbortSignal
  /** Called as each request goes out. */
  readonly onSend?: (seq: number, intendedMs: number) => void
  /** Called as each request completes. */
  readonly onResult?: (result: RequestResult) => void
}

/** Sends the schedule; resolves with every result in schedule order once all have completed. */
export async function runOpenLoop (opts: OpenLoopOptions): Promise<RequestResult[]> {
  const interval = 1000 / opts.ratePerSec
  let total = Math.floor(opts.durationMs / interval)
  const start = opts.startAt ?? performance.now()
  const timeoutMs = opts.timeoutMs ?? 30_000
  const agent = new Agent({ connections: opts.connections ?? 2048, pipelining: 1 })
  const body = opts.body === undefined ? '{"amount":42}' : opts.body
  const baseHeaders: Record<string, string> = body === null ? {} : { 'content-type': 'application/json' }
  const request: Dispatcher.RequestOptions = {
    origin: opts.url,
    path: opts.path ?? '/pay/checkout',
    method: opts.method ?? 'POST',
    headers: baseHeaders,
    body,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs
  }
  const results = new Array<RequestResult>(total)
  const pending: Array<Promise<void>> = []

  const send = async (seq: number): Promise<void> => {
    const intendedMs = seq * interval
    opts.onSend?.(seq, intendedMs)
    let outcome: { status: number, error?: string, upstream?: string }
    try {
      const res = await agent.request(opts.headers === undefined ? request : { ...request, headers: { ...baseHeaders, ...opts.headers(seq) } })
      const upstream = res.headers['x-gateway-upstream']
      await res.body.dump()
      outcome = { status: res.statusCode, ...(typeof upstream === 'string' ? { upstream } : {}) }
    } catch (err) {
      const e = err as { code?: unknown, name?: unknown }
      outcome = { status: 0, error: typeof e.code === 'string' ? e.code : String(e.name ?? 'Error') }
    }
    const result: RequestResult = { seq, intendedMs, latencyMs: performance.now() - start - intendedMs, ...outcome }
    results[seq] = result
    opts.onResult?.(result)
  }

  await new Promise<void>(resolve => {
    let next = 0
    // A chain of timeouts, each to the next due moment. Timers fire late under
    // load; the loop catches up by sending everything already due at once.
    const tick = (): void => {
      if (opts.signal?.aborted === true) total = next
      const due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1)
      while (next < due) pending.push(send(next++))
      if (next >= total) {
        resolve()
        return
      }
      setTimeout(tick, Math.max(0, start + next * interval - performance.now()))
    }
    tick()
  })
  await Promise.all(pending)
  await agent.close()
  results.length = total
  return results
}
