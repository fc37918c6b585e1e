/**
 * Adaptive admission limits (routes with `admission.adaptive`): a gradient
 * limiter in the spirit of Netflix concurrency-limits' Gradient2, run off
 * the hot path. The data plane only adds up, per route gate, how long each
 * response held its slot and the most requests in flight; twice a second
 * this reads and resets those sums and moves the gate's limit:
 *
 *   latency  = mean slot time over the interval (at least MIN_SAMPLES)
 *   baseline = the lowest latency seen, drifting up 1 % per interval so a
 *              service that got slower for good is not held to its past
 *   gradient = clamp(tolerance × baseline / latency, 0.5, 1)
 *   target   = limit × gradient + √limit   (headroom to keep probing)
 *   limit    = 0.8 × limit + 0.2 × target, between minLimit and maxConcurrent
 *
 * The limit only grows while the route is busy (its peak in flight reached
 * half the limit): a quiet route is not evidence that more would be fine.
 * A change of a quarter or more since the last one reported is an
 * `overload.limit` event.
 */
import type { EventDraft } from '../events/types.js'
import type { AdmissionView, ControlRoute } from '../views/ports.js'

export const ADAPTIVE_INTERVAL_MS = 500
const MIN_SAMPLES = 10

interface State { baseline: number, at: number, reported: number, exact: number }

export class AdaptiveLimits {
  readonly #state = new Map<string, State>()

  tick (routes: readonly ControlRoute[], now: number): EventDraft[] {
    const out: EventDraft[] = []
    const names = new Set<string>()
    for (const route of routes) {
      const gate = route.admission
      const adaptive = gate?.config.adaptive ?? null
      if (gate === null || adaptive === null) continue
      const name = route.config.name
      names.add(name)
      let s = this.#state.get(name)
      if (s === undefined) {
        s = { baseline: 0, at: now, reported: gate.limit, exact: gate.limit }
        this.#state.set(name, s)
        drain(gate)
        continue
      }
      if (now - s.at < ADAPTIVE_INTERVAL_MS) continue
      s.at = now
      const e = step(gate, s, adaptive.minLimit, adaptive.tolerance)
      if (e !== null) out.push({ ...e, route: name })
    }
    for (const name of this.#state.keys()) if (!names.has(name)) this.#state.delete(name)
    return out
  }
}

function drain (gate: AdmissionView): { count: number, ms: number, peak: number } {
  const r = { count: gate.heldCount, ms: gate.heldMs, peak: gate.peakInflight }
  gate.heldCount = 0
  gate.heldMs = 0
  gate.peakInflight = gate.inflight
  return r
}

/** One evaluation; the event to emit when the limit moved by a quarter or more since the last one reported. */
function step (gate: AdmissionView, s: State, minLimit: number, tolerance: number): Omit<EventDraft, 'route'> | null {
  const { count, ms, peak } = drain(gate)
  if (count < MIN_SAMPLES) return null
  const latency = ms / count
  s.baseline = s.baseline === 0 ? latency : Math.min(s.baseline * 1.01, latency)
  const gradient = Math.max(0.5, Math.min(1, tolerance * s.baseline / latency))
  const busy = peak >= s.exact / 2
  const target = s.exact * gradient + Math.sqrt(s.exact)
  if (target > s.exact && !busy) return null
  s.exact = Math.max(minLimit, Math.min(gate.config.maxConcurrent, 0.8 * s.exact + 0.2 * target))
  const limit = Math.max(minLimit, Math.round(s.exact))
  if (limit !== gate.limit) gate.setLimit(limit)
  if (Math.abs(limit - s.reported) < Math.max(1, s.reported / 4)) return null
  const before = s.reported
  s.reported = limit
  return {
    kind: 'overload.limit',
    before,
    after: limit,
    measured: Math.round(latency * 10) / 10,
    threshold: Math.round(tolerance * s.baseline * 10) / 10,
    enforced: true,
    detail: `adaptive limit ${before} → ${limit}: mean latency ${latency.toFixed(1)} ms against ${tolerance} × its lowest ${s.baseline.toFixed(1)} ms (gradient ${gradient.toFixed(2)}), peak ${peak} in flight`
  }
}
