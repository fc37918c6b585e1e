/**
 * The gateway's Prometheus metrics (GET /metrics on the admin listener).
 * Everything is read from what the data plane already records (counters,
 * tallies, bucket arrays) when Prometheus scrapes: prom-client's collect()
 * hooks fill the series then, so a request pays nothing for the metrics.
 *
 * Naming follows Prometheus practice: `gateway_` prefix, base units
 * (seconds, ratios 0..1), `_total` on counters. Labels are bounded: route
 * and upstream names come from the policy, `class` / `outcome` / `code` /
 * `kind` from fixed tables; request paths and client data never become
 * labels. docs/metrics.md lists every series.
 */
import { AggregatorRegistry, Counter, Gauge, Registry, type Metric, type MetricObjectWithValues, type MetricValue } from 'prom-client'
import { RESPONSE_CLASSES, type ResponseTally } from '../core/response-tally.js'
import type { GatewayEvent } from '../events/types.js'
import type { MetricsSource, MetricsRoute, MetricsUpstream } from './source.js'
import { bucketHistogram } from './histogram.js'
import { processRegistry } from './process.js'

type Labels = Record<string, string>
type Emit = (labels: Labels, value: number) => void

const SHIFT_PHASES = ['idle', 'breached', 'shifting', 'holding', 'calming', 'ramping'] as const
const BREAKER_STATES = ['closed', 'open', 'halfOpen'] as const
const IDEMPOTENCY = [['replayed', 'replays'], ['waited', 'waited'], ['conflict', 'conflicts'], ['mismatch', 'mismatches'], ['store_unavailable', 'storeUnavailable'], ['key_missing', 'keyMissing']] as const

export interface EventSource {
  subscribe (fn: (e: GatewayEvent) => void): () => void
}

export class GatewayMetrics {
  readonly #registry = new Registry()
  readonly #source: MetricsSource
  /** `route \0 kind` → events so far. */
  readonly #events = new Map<string, number>()
  readonly #unsubscribe: () => void

  constructor (source: MetricsSource, events: EventSource) {
    this.#source = source
    this.#unsubscribe = events.subscribe(e => {
      const key = `${e.route}\u0000${e.kind}`
      this.#events.set(key, (this.#events.get(key) ?? 0) + 1)
    })
    this.#define()
  }

  get contentType (): string { return this.#registry.contentType }

  /** The text exposition: the gateway's series, then the process's. */
  async text (): Promise<string> {
    return `${await this.#registry.metrics()}\n${await processRegistry().metrics()}`
  }

  /** The series as JSON, process metrics included, for a `--workers` primary to aggregate (see aggregateMetrics). */
  async json (): Promise<Array<MetricObjectWithValues<MetricValue<string>>>> {
    return [...await this.#registry.getMetricsAsJSON(), ...await processRegistry().getMetricsAsJSON()]
  }

  close (): void {
    this.#unsubscribe()
  }

  #counter (name: string, help: string, labelNames: string[], fill: (emit: Emit) => void): void {
    // eslint-disable-next-line no-new
    new Counter({
      name, help, labelNames, registers: [this.#registry],
      collect () {
        this.reset()
        fill((labels, value) => { this.inc(labels, value) })
      }
    })
  }

  /** `aggregator`: how a `--workers` primary combines the workers' values (sum for counts, average for shares and states). */
  #gauge (name: string, help: string, labelNames: string[], fill: (emit: Emit) => void, aggregator: 'sum' | 'average' = 'average'): void {
    // eslint-disable-next-line no-new
    new Gauge({
      name, help, labelNames, registers: [this.#registry], aggregator,
      collect () {
        this.reset()
        fill((labels, value) => { this.set(labels, value) })
      }
    })
  }

  #perRoute (fill: (r: MetricsRoute, emit: Emit) => void): (emit: Emit) => void {
    return emit => { for (const r of this.#source.routes()) fill(r, emit) }
  }

  #perUpstream (fill: (r: MetricsRoute, u: MetricsUpstream, emit: Emit, labels: Labels) => void): (emit: Emit) => void {
    return emit => {
      for (const r of this.#source.routes()) for (const u of r.upstreams) fill(r, u, emit, { route: r.name, upstream: u.name })
    }
  }

  /** Route tallies (listener ""), then the listeners' (route ""): requests no route took. */
  * #tallies (): Iterable<readonly [Labels, ResponseTally]> {
    for (const r of this.#source.routes()) yield [{ route: r.name, listener: '' }, r.responses]
    for (const l of this.#source.listeners()) yield [{ route: '', listener: l.name }, l.unrouted]
  }

  #define (): void {
    const src = this.#source
    const tallies = (): Iterable<readonly [Labels, ResponseTally]> => this.#tallies()
    const register = (m: Metric): void => { this.#registry.registerMetric(m) }

    // Clients
    this.#counter('gateway_requests_total', 'Responses to clients by status class ("incomplete": the client went away or the response was cut). route="" counts requests no route took, per listener.',
      ['route', 'listener', 'class'], emit => {
        for (const [labels, t] of this.#tallies()) RESPONSE_CLASSES.forEach((c, i) => { emit({ ...labels, class: c }, t.byClass[i] as number) })
      })
    this.#counter('gateway_errors_total', 'Responses the gateway answered with its own error, by code (docs/errors.md).', ['route', 'listener', 'code'], emit => {
      for (const [labels, t] of this.#tallies()) for (const [code, n] of t.errors) emit({ ...labels, code }, n)
    })
    register(bucketHistogram('gateway_request_duration_seconds', 'From the request\'s arrival to the end of its response (route="": requests no route took).', function * (this: void) {
      for (const [labels, t] of tallies()) yield [labels, t.duration] as const
    }))

    // Delivery
    const routeCounter = (name: string, help: string, key: keyof MetricsRoute['delivery']): void => {
      this.#counter(name, help, ['route'], this.#perRoute((r, emit) => { emit({ route: r.name }, r.delivery[key]) }))
    }
    routeCounter('gateway_retries_total', 'Retries sent.', 'retries')
    routeCounter('gateway_retry_budget_denied_total', 'Retries the policy allowed but the retry budget refused.', 'budgetDenied')
    routeCounter('gateway_retries_unsafe_skipped_total', 'Failures not retried because the request may have been processed (POST/PATCH without a deduplicating upstream).', 'unsafeNotRetried')
    routeCounter('gateway_hedges_total', 'Hedged attempts sent.', 'hedges')
    routeCounter('gateway_hedge_wins_total', 'Requests answered by the hedge rather than the first attempt.', 'hedgeWins')
    routeCounter('gateway_body_too_large_total', 'Requests refused (413) for their body size.', 'tooLarge')
    this.#counter('gateway_attempt_failures_total', 'Failed upstream attempts by what the failure proves: never_sent (safe to send again) or maybe_processed.', ['route', 'delivery'],
      this.#perRoute((r, emit) => {
        emit({ route: r.name, delivery: 'never_sent' }, r.delivery.neverSent)
        emit({ route: r.name, delivery: 'maybe_processed' }, r.delivery.maybeProcessed)
      }))
    this.#counter('gateway_idempotency_total', 'Idempotency outcomes other than a first send: replayed (stored answer), waited (for the first of the same key), conflict (409), mismatch (422: same key, other request), store_unavailable (503), key_missing (idempotency.keyFrom could not derive a key: forwarded undeduped, or 400 with keyMissing: reject).', ['route', 'result'],
      this.#perRoute((r, emit) => { for (const [result, key] of IDEMPOTENCY) emit({ route: r.name, result }, r.delivery[key]) }))

    // Shift
    this.#gauge('gateway_shift_backup_share', 'Share of the route\'s traffic the shift sends to the backups now (0..1).', ['route'],
      this.#perRoute((r, emit) => { if (r.shift !== null) emit({ route: r.name }, r.shift.applied) }))
    this.#gauge('gateway_shift_phase', 'The shift controller\'s phase: 1 for the current one.', ['route', 'phase'],
      this.#perRoute((r, emit) => { if (r.shift !== null) for (const p of SHIFT_PHASES) emit({ route: r.name, phase: p }, r.shift.phase === p ? 1 : 0) }))

    // Rate limits
    this.#counter('gateway_rate_limit_requests_total', 'Requests checked against a rate limit of the route, by result: allowed, or refused (429 GW_ERR_RATE_LIMITED).', ['route', 'limit', 'result'],
      this.#perRoute((r, emit) => {
        for (const l of r.rateLimits) {
          emit({ route: r.name, limit: l.name, result: 'allowed' }, l.allowed)
          emit({ route: r.name, limit: l.name, result: 'refused' }, l.refused)
        }
      }))
    this.#counter('gateway_rate_limit_store_down_total', 'Checks of a global rate limit decided by its storeDown rule because Redis could not answer.', ['route', 'limit'],
      this.#perRoute((r, emit) => { for (const l of r.rateLimits) emit({ route: r.name, limit: l.name }, l.storeDown) }))

    // Admission
    this.#gauge('gateway_admission_limit', 'The route\'s concurrency limit in force: admission.maxConcurrent, or the adaptive limit (routes with an admission block only).', ['route'],
      this.#perRoute((r, emit) => { if (r.admission !== null) emit({ route: r.name }, r.admission.limit) }))
    this.#gauge('gateway_admission_inflight_requests', 'Requests of the route holding an admission slot now.', ['route'],
      this.#perRoute((r, emit) => { if (r.admission !== null) emit({ route: r.name }, r.admission.inflight) }), 'sum')
    this.#gauge('gateway_admission_waiting_requests', 'Requests of the route waiting in its admission queue now.', ['route'],
      this.#perRoute((r, emit) => { if (r.admission !== null) emit({ route: r.name }, r.admission.waiting) }), 'sum')
    this.#counter('gateway_admission_queued_total', 'Requests that had to wait for an admission slot.', ['route'],
      this.#perRoute((r, emit) => { if (r.admission !== null) emit({ route: r.name }, r.admission.queued) }))
    this.#gauge('gateway_tenants_inflight', 'Tenants with requests of the route in flight now (routes with bulkheads.perTenant only).', ['route'],
      this.#perRoute((r, emit) => { if (r.tenantCap !== null) emit({ route: r.name }, r.tenantCap.tenantsInFlight) }), 'sum')
    this.#counter('gateway_tenant_refused_total', 'Requests refused because their tenant had its bulkheads.perTenant share in flight (429 GW_ERR_TENANT_BUSY).', ['route'],
      this.#perRoute((r, emit) => { if (r.tenantCap !== null) emit({ route: r.name }, r.tenantCap.refused) }))
    this.#counter('gateway_admission_refused_total', 'Requests refused by admission control (503 GW_ERR_OVERLOADED): queue_full or queue_timeout.', ['route', 'reason'],
      this.#perRoute((r, emit) => {
        if (r.admission === null) return
        emit({ route: r.name, reason: 'queue_full' }, r.admission.refused.queueFull)
        emit({ route: r.name, reason: 'queue_timeout' }, r.admission.refused.queueTimeout)
      }))

    this.#gauge('gateway_overload_limit', 'The gateway-wide overload limit (overload.maxConcurrent), and from how many requests in flight each priority is refused.', ['priority'], emit => {
      const o = src.overload()
      if (o !== null) for (const [priority, n] of Object.entries(o.ceilings)) emit({ priority }, n)
    })
    this.#gauge('gateway_overload_inflight_requests', 'Requests holding a slot of the gateway-wide overload gate now.', [], emit => { const o = src.overload(); if (o !== null) emit({}, o.inflight) }, 'sum')
    this.#counter('gateway_overload_refused_total', 'Requests refused by the gateway-wide overload gate (503 GW_ERR_SHED), by priority.', ['priority'], emit => {
      const o = src.overload()
      if (o !== null) for (const [priority, n] of Object.entries(o.refused)) emit({ priority }, n)
    })

    // Upstreams
    this.#counter('gateway_upstream_attempts_total', 'Attempts sent to the upstream, by outcome (2xx..5xx: its answer; connect, timeout, reset, protocol: gateway-side failures; aborted: the client went away).', ['route', 'upstream', 'outcome'],
      this.#perUpstream((_r, u, emit, l) => { for (const [outcome, n] of u.attempts) emit({ ...l, outcome }, n) }))
    register(bucketHistogram('gateway_upstream_attempt_duration_seconds', 'From sending an attempt to its response headers (or its failure).', function * (this: void) {
      for (const r of src.routes()) for (const u of r.upstreams) yield [{ route: r.name, upstream: u.name }, u.latency] as const
    }))
    this.#gauge('gateway_upstream_share', 'Expected share of the route\'s traffic the upstream takes now (0..1).', ['route', 'upstream', 'role'],
      this.#perUpstream((_r, u, emit, l) => { emit({ ...l, role: u.role }, u.share) }))
    this.#gauge('gateway_upstream_weight', 'The upstream\'s weight now (0: drained).', ['route', 'upstream'], this.#perUpstream((_r, u, emit, l) => { emit(l, u.weight) }))
    this.#gauge('gateway_upstream_available', '1 when the upstream may take traffic (not ejected, health check passing, breaker not open).', ['route', 'upstream'],
      this.#perUpstream((_r, u, emit, l) => { emit(l, u.available ? 1 : 0) }))
    this.#gauge('gateway_upstream_breaker_state', 'The upstream\'s circuit breaker: 1 for the current state (routes with a breaker only).', ['route', 'upstream', 'state'],
      this.#perUpstream((_r, u, emit, l) => { if (u.breaker !== null) for (const s of BREAKER_STATES) emit({ ...l, state: s }, u.breaker === s ? 1 : 0) }))
    this.#gauge('gateway_upstream_ejected', '1 while outlier ejection keeps the upstream out.', ['route', 'upstream'], this.#perUpstream((_r, u, emit, l) => { emit(l, u.ejected ? 1 : 0) }))
    this.#gauge('gateway_upstream_health_check_up', 'Active health check: 1 passing, 0 failing (routes with a health check only).', ['route', 'upstream'],
      this.#perUpstream((_r, u, emit, l) => { if (u.healthCheckUp !== null) emit(l, u.healthCheckUp ? 1 : 0) }))
    this.#gauge('gateway_upstream_inflight_attempts', 'Attempts waiting for response headers now.', ['route', 'upstream'], this.#perUpstream((_r, u, emit, l) => { emit(l, u.inflight) }), 'sum')
    this.#gauge('gateway_upstream_oldest_inflight_seconds', 'Age of the oldest attempt waiting for response headers (0 when none).', ['route', 'upstream'],
      this.#perUpstream((_r, u, emit, l) => { emit(l, u.oldestInflightMs / 1000) }))
    this.#counter('gateway_upstream_probes_total', 'Synthetic latency probes sent by the shift (routes with probes only).', ['route', 'upstream'],
      this.#perUpstream((_r, u, emit, l) => { if (u.probesSent !== null) emit(l, u.probesSent) }))

    // Listeners, store, policy, events
    this.#gauge('gateway_listener_connections', 'Client connections open now.', ['listener'], emit => { for (const l of src.listeners()) emit({ listener: l.name }, l.connections.open) }, 'sum')
    this.#gauge('gateway_listener_inflight_requests', 'Client requests being served now.', ['listener'], emit => { for (const l of src.listeners()) emit({ listener: l.name }, l.inflight) }, 'sum')
    this.#counter('gateway_listener_connections_evicted_total', 'Idle connections closed to make room at the connection cap.', ['listener'], emit => { for (const l of src.listeners()) emit({ listener: l.name }, l.connections.evicted) })
    this.#counter('gateway_listener_connections_refused_total', 'Connections refused at the connection cap.', ['listener'], emit => { for (const l of src.listeners()) emit({ listener: l.name }, l.connections.refused) })
    this.#gauge('gateway_store_up', 'The state store: 1 reachable, 0 not (memory is always 1).', ['kind'], emit => { const s = src.store(); emit({ kind: s.kind }, s.up ? 1 : 0) })
    this.#gauge('gateway_policy_info', 'The running policy: its version and hash as labels, value 1.', ['version', 'hash'], emit => { const p = src.policy(); emit({ version: p.version, hash: p.hash.slice(0, 12) }, 1) })
    this.#gauge('gateway_policy_generation', 'Policies loaded since start (1 = the first).', [], emit => { emit({}, src.policy().generation) })
    this.#counter('gateway_events_total', 'State changes reported on /events, by kind (shift.step, breaker.open, outlier.eject, probe.flip, policy.reload, …). route="*" for gateway-wide ones.', ['route', 'kind'], emit => {
      for (const [key, n] of this.#events) {
        const [route, kind] = key.split('\u0000') as [string, string]
        emit({ route, kind }, n)
      }
    })
  }
}

/** `--workers`: the workers' series (from json()) combined as prom-client's cluster support does, plus the primary's own process metrics. */
export async function aggregateMetrics (perWorker: ReadonlyArray<Array<MetricObjectWithValues<MetricValue<string>>>>): Promise<{ contentType: string, body: string }> {
  const all = [...perWorker, await processRegistry().getMetricsAsJSON()]
  const registry = AggregatorRegistry.aggregate(all)
  return { contentType: registry.contentType, body: await registry.metrics() }
}
