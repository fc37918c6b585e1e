/**
 * Outlier ejection within one priority level (Envoy's outlier detection, the
 * consecutive-failure part): an upstream with `consecutiveFailures` failed
 * attempts in a row is ejected for baseEjectionTime × times ejected (capped),
 * unless that would eject more than maxEjectionPercent of its level. Pure: the
 * data plane counted the streaks; time is passed in.
 */
import type { OutlierConfig } from '../policy/snapshot.js'
import type { EventDraft } from '../events/types.js'
import type { UpstreamHealth } from '../health/upstream-health.js'

export function evaluateOutliers (level: readonly UpstreamHealth[], cfg: OutlierConfig, now: number): EventDraft[] {
  const events: EventDraft[] = []
  let ejected = 0
  for (const h of level) {
    if (h.ejectedUntil === 0) continue
    if (now >= h.ejectedUntil) {
      h.ejectedUntil = 0
      h.failStreak = 0
      events.push({ kind: 'outlier.return', route: h.route, upstream: h.upstream, before: 'ejected', after: 'active', enforced: true, detail: 'ejection time over; back in selection' })
    } else {
      ejected++
    }
  }
  for (const h of level) {
    if (h.ejectedUntil !== 0 || h.failStreak < cfg.consecutiveFailures) continue
    // Envoy's rail: eject only while the ejected share stays below the cap.
    if (ejected / level.length >= cfg.maxEjectionPercent) continue
    h.ejections++
    const ms = Math.min(cfg.maxEjectionMs, cfg.baseEjectionMs * h.ejections)
    h.ejectedUntil = now + ms
    ejected++
    events.push({
      kind: 'outlier.eject', route: h.route, upstream: h.upstream, before: 'active', after: 'ejected', measured: h.failStreak, threshold: cfg.consecutiveFailures, enforced: true,
      detail: `${h.failStreak} failed attempts in a row; ejected for ${ms}ms (ejection #${h.ejections})`
    })
    h.failStreak = 0
  }
  return events
}
