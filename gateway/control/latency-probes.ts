/**
 * The shift's synthetic probes: a GET on every upstream of every shifting
 * route, at a steady pace, whose answer times and failures go into the
 * upstream's probe signal (UpstreamStats.probe, kept apart from real
 * traffic). They let the controller know the backups before an incident
 * (so its first step can go far) and watch a primary that no customer is
 * sent to any more (minShare 0), so recovery is still seen. Built on the
 * health-check Prober (one probe in flight per upstream, the next one an
 * interval after the last ends); its healthy/unhealthy verdicts are unused.
 */
import type { Clock } from '../core/clock.js'
import type { InflightAttempt } from '../health/outcome.js'
import type { UpstreamStats } from '../health/upstream-stats.js'
import type { ControlTarget } from '../views/ports.js'
import { Prober } from './prober.js'

interface Probe extends InflightAttempt {
  readonly stats: UpstreamStats
}

/** Every status below 500 is an answer: the probe path need not exist, the upstream only has to respond. */
const ANSWERED: readonly [number, number] = [100, 499]

/** How upstreams (and their logs) tell the shift's probes from real traffic. */
export const PROBE_USER_AGENT = 'gateway-latency-probe'

export class LatencyProbes {
  readonly #stats = new Map<string, UpstreamStats>()
  readonly #prober: Prober

  constructor (clock: Clock) {
    this.#prober = new Prober({
      clock,
      onFlip: () => {},
      userAgent: PROBE_USER_AGENT,
      observe: {
        begin: (key, startedAt) => {
          const stats = this.#stats.get(key)
          if (stats === undefined) return undefined
          const probe: Probe = { startedAt, stats, listPrev: null, listNext: null, listOwner: null }
          stats.probeBegin(probe)
          return probe
        },
        end: (token, latencyMs, failed) => {
          const probe = token as Probe
          probe.stats.probeEnd(probe, latencyMs, failed)
        }
      }
    })
  }

  /** Probe the upstreams of every route whose shift has probes on (on start and on every reload). */
  sync (rt: ControlTarget): void {
    this.#stats.clear()
    const targets: Parameters<Prober['sync']>[0][number][] = []
    for (const route of rt.routes) {
      const probe = route.config.shift?.probe
      if (probe == null) continue
      for (const u of route.upstreams) {
        this.#stats.set(u.config.key, u.stats)
        targets.push({
          target: { key: u.config.key, origin: u.config.origin, hostHeader: u.config.hostHeader, tls: u.config.tls },
          config: { path: u.config.basePath + probe.path, intervalMs: probe.intervalMs, timeoutMs: probe.timeoutMs, healthyThreshold: 1, unhealthyThreshold: 1, expectStatus: ANSWERED }
        })
      }
    }
    this.#prober.sync(targets)
  }

  /**
   * Probe these upstreams (by key) now, where none of their probes is in
   * flight: the controller wants word on the backups that was sent after an
   * incident began, not before it. Returns how many probes were started.
   */
  probeNow (keys: Iterable<string>): number {
    let n = 0
    for (const key of keys) if (this.#stats.has(key) && this.#prober.probeNow(key)) n++
    return n
  }

  close (): Promise<void> {
    return this.#prober.close()
  }
}
