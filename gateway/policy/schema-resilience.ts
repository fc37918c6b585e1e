/**
 * Per-route resilience blocks: breaker (opossum), failover, latency-triggered
 * traffic shift, outlier ejection, active health checks. Every key here is
 * implemented; defaults are the ones the S1 scenario was tuned with.
 */
import { Type } from '@sinclair/typebox'
import { strict, Duration, Percent, Count } from './schema-kit.js'

const OUTCOME_NAMES = ['connect', 'timeout', 'reset', 'protocol', '5xx', '4xx'] as const

export const BreakerSchema = strict({
  failureRate: Type.Optional(Percent('Open when this share of requests in the window failed (and minRequests were seen).', '50%')),
  window: Type.Optional(Duration('Rolling window of the failure rate (10 buckets).', '10s')),
  minRequests: Type.Optional(Count('Requests the window must hold before the failure rate can open the breaker. @default 20', 1, 100000)),
  consecutiveFailures: Type.Optional(Count('Open after this many failures in a row, whatever the rate; 0 turns it off. @default 5', 0, 10000)),
  openFor: Type.Optional(Duration('How long the breaker stays open before one half-open probe request is let through.', '5s')),
  maxOpenFor: Type.Optional(Duration('Cap of the open time, which doubles (with ±20% jitter) each time the half-open probe fails.', '60s')),
  failOn: Type.Optional(Type.Array(Type.Union([
    Type.Unsafe<typeof OUTCOME_NAMES[number]>({ type: 'string', enum: [...OUTCOME_NAMES] }),
    Type.Integer({ minimum: 400, maximum: 599 })
  ]), {
    minItems: 1,
    uniqueItems: true,
    description: 'Outcomes that count as failures: connect, timeout, reset, protocol, 5xx, 4xx, or single status codes (429). @default [connect, timeout, reset, protocol, 5xx]'
  }))
}, { description: 'A circuit breaker per upstream of this route (opossum). An open breaker takes the upstream out of selection; traffic goes to the rest by weight and priority.' })

export const FailoverSchema = strict({
  overprovisioning: Type.Optional(Type.Number({
    minimum: 1,
    maximum: 10,
    description: 'Envoy-style overprovisioning factor: when only part of the primaries (by weight) is available, they keep min(1, available share × factor) of the traffic and only the rest spills to the backups. Unset = backups take traffic only when no primary is available.'
  })),
  panic: Type.Optional(Type.Boolean({ description: 'When no upstream is available, send to all of them anyway (Envoy panic mode) instead of answering 503. @default false' }))
}, { description: 'How traffic moves between priority levels when upstreams are unavailable.' })

const QUANTILES = ['p50', 'p90', 'p95', 'p99'] as const

export const ShiftSchema = strict({
  enforce: Type.Optional(Type.Boolean({ description: 'false = shadow mode: decide and report (events, /status) without moving any traffic. @default true' })),
  signal: Type.Optional(strict({
    quantile: Type.Optional(Type.Unsafe<typeof QUANTILES[number]>({ type: 'string', enum: [...QUANTILES], description: 'Latency quantile of the primaries that is compared with the thresholds. @default p95' })),
    window: Type.Optional(Duration('Sliding window of the signal. Requests still waiting for an answer count at their current age, so a slow-down is seen before the slow requests finish.', '2s')),
    minSamples: Type.Optional(Count('Samples (finished + in flight) the window needs before the controller acts. @default 10', 1, 100000))
  }, { description: 'What is measured.' })),
  threshold: Duration('Trip when the signal stays above this for `for`.'),
  for: Type.Optional(Duration('Dwell: how long the signal must stay above threshold before the first step.', '500ms')),
  step: Type.Optional(Percent('Share of the route\'s traffic moved to the backups per step.', '25%')),
  interval: Type.Optional(Duration('Time between steps while the breach lasts.', '250ms')),
  max: Type.Optional(Percent('Most of the route\'s traffic that may be moved. @default 100% minus minShare', undefined)),
  minShare: Type.Optional(Percent('Share the primaries always keep, so their recovery is observed (probe share).', '5%')),
  cooldown: Type.Optional(Duration('After a trip, no ramp-back starts before this has passed.', '10s')),
  recover: Type.Optional(strict({
    threshold: Type.Optional(Duration('Recovered when the signal stays below this (lower than threshold: hysteresis). @default half of threshold')),
    for: Type.Optional(Duration('How long the signal must stay below recover.threshold before ramping back; doubles with each trip that follows a ramp-back, up to maxFor.', '3s')),
    maxFor: Type.Optional(Duration('Cap of the lengthened recovery dwell; after this long fully restored, the trip count is forgotten.', '60s')),
    step: Type.Optional(Percent('Share moved back to the primaries per ramp step (linear curve), or the first step (exponential curve, doubling).', '20%')),
    interval: Type.Optional(Duration('Time between ramp steps.', '1s')),
    curve: Type.Optional(Type.Unsafe<'linear' | 'exponential'>({ type: 'string', enum: ['linear', 'exponential'], description: 'linear: equal steps; exponential: step, 2×step, 4×step… (slow start). @default linear' }))
  }, { description: 'Moving traffic back once the primaries are healthy again.' }))
}, { description: 'Latency-triggered traffic shift from the primaries to the backups, and the ramp back. The controller never shifts onto backups whose own signal is above threshold.' })

export const OutlierSchema = strict({
  consecutiveFailures: Type.Optional(Count('Eject an upstream after this many failed attempts in a row (5xx, connect, timeout, reset, protocol). @default 5', 1, 10000)),
  baseEjectionTime: Type.Optional(Duration('Ejection time; multiplied by the number of times the upstream was ejected before.', '5s')),
  maxEjectionTime: Type.Optional(Duration('Cap of the ejection time.', '60s')),
  maxEjectionPercent: Type.Optional(Percent('Most of a priority level (by count) that may be ejected at once.', '50%'))
}, { description: 'Outlier ejection (as in Envoy) among the upstreams of one priority level.' })

export const HealthCheckSchema = strict({
  path: Type.String({ pattern: '^/', description: 'Path probed with GET on every upstream of the route.', 'x-hint': 'start the path with "/"' }),
  interval: Type.Optional(Duration('Time between two probes of one upstream.', '5s')),
  timeout: Type.Optional(Duration('A probe without an answer by then fails.', '1s')),
  healthyThreshold: Type.Optional(Count('Consecutive successes (2xx/3xx) to become healthy. @default 2', 1, 100)),
  unhealthyThreshold: Type.Optional(Count('Consecutive failures to become unhealthy. @default 3', 1, 100))
}, { description: 'Active health checks. An unhealthy upstream is taken out of selection; while the primaries are unhealthy the shift controller does not ramp back.' })
