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
  for: Type.Optional(Duration('Dwell: how long a signal (latency, errors or stall) must stay in breach before the first step. Short, because each signal has its own rail against blips: the quantile needs 5 % of a 2 s window over the threshold, the failure rate 20 attempts, the stall more stuck attempts than a flowing channel can have.', '100ms')),
  step: Type.Optional(Percent('Share of the route\'s traffic moved to the backups per step. The first step of an episode goes straight to max when the backups are known good (fast and not failing by probe answers to probes sent since the incident began, or by their traffic); otherwise it is a trial of this size, and the next step waits until the trial\'s requests are old enough to show the backups fast (1.1 × recover.threshold / quantile: then straight to max) or slow (1.1 × threshold / quantile: then steps of this size while they stay under the threshold).', '25%')),
  interval: Type.Optional(Duration('Time between steps while the breach lasts.', '250ms')),
  max: Type.Optional(Percent('Most of the route\'s traffic that may be moved. @default 100% minus minShare', undefined)),
  minShare: Type.Optional(Percent('Share of real traffic the primaries always keep. With probes on, recovery is watched by the probes and no customer needs to wait on a slow primary; without probes, real requests are the only way to see recovery. @default 0% with probes, 5% without', undefined)),
  cooldown: Type.Optional(Duration('After a trip, no ramp-back starts before this has passed.', '10s')),
  recover: Type.Optional(strict({
    threshold: Type.Optional(Duration('Recovered when the signal stays below this (lower than threshold: hysteresis).', 'half of threshold')),
    for: Type.Optional(Duration('How long the signal must stay below recover.threshold before ramping back; doubles with each trip that follows a ramp-back, up to maxFor.', '3s')),
    maxFor: Type.Optional(Duration('Cap of the lengthened recovery dwell; after this long fully restored, the trip count is forgotten.', '60s')),
    step: Type.Optional(Percent('Share moved back to the primaries per ramp step (linear curve), or the first step (exponential curve, doubling).', '20%')),
    interval: Type.Optional(Duration('Time between ramp steps.', '1s')),
    curve: Type.Optional(Type.Unsafe<'linear' | 'exponential'>({ type: 'string', enum: ['linear', 'exponential'], description: 'linear: equal steps; exponential: step, 2×step, 4×step… (slow start). @default linear' }))
  }, { description: 'Moving traffic back once the primaries are healthy again.' })),
  errors: Type.Optional(Type.Union([Type.Literal(false), strict({
    rate: Type.Optional(Percent('Trip when more than this share of the primaries\' finished attempts failed (5xx, reset, timeout, invalid response). Measured over the newest signal slots holding minSamples attempts, so a storm is seen within about a slot at high traffic. Connect failures are not failures here but a sign the primaries are down: beyond 5 % of the attempts, the signal stands aside (failover, retries, health checks and the breaker handle a dead upstream, and bring it back as soon as it answers). After an error trip, ramping back needs word that the failures stopped: real attempts, or 8 good probe answers in a row.', '20%')),
    recoverRate: Type.Optional(Percent('Calm only below this failure share. @default half of rate', undefined)),
    minSamples: Type.Optional(Count('Finished attempts the failure share needs. @default 20', 1, 100000))
  }, { description: 'The failure-rate signal.' })], { description: 'The primaries\' failure rate as a second trip signal, with the same dwell, steps, hysteresis and backup guard as latency; false turns it off. @default on' })),
  stall: Type.Optional(Type.Union([Type.Literal(false), strict({
    factor: Type.Optional(Type.Number({ minimum: 1, maximum: 100, description: 'An attempt counts as stuck once older than factor × the primaries\' own healthy p99, kept within 0.4 and 0.5 of threshold. @default 2' })),
    minStuck: Type.Optional(Count('Stuck attempts needed, at least. @default 5', 1, 100000))
  }, { description: 'The stall signal.' })], { description: 'Stall signal: completions from the primaries have nearly stopped while requests pile up — at least minStuck stuck attempts, three times as many as finished within the stuck age. Traffic that still flows can only reach that at a latency of at least the threshold, so the stall sees a breach sooner (a 200 ms channel that stops answering is seen in about 0.4 s plus the dwell with a 1 s threshold) and never trips one that would not come. false turns it off. @default on' })),
  probe: Type.Optional(Type.Union([Type.Literal(false), strict({
    path: Type.Optional(Type.String({ pattern: '^/', description: 'Path of the GET sent to every upstream of the route (after the upstream\'s base path). Any answer below 500 counts; choose a path that goes through the same slow dependency as real requests. @default the health check path, else /', 'x-hint': 'start the path with "/"' })),
    interval: Type.Optional(Duration('Time between the end of one probe of an upstream and the start of the next.', '500ms')),
    timeout: Type.Optional(Duration('A probe without an answer by then counts as failed (while it waits, its age counts in the signal).', '5s'))
  }, { description: 'Synthetic latency probes.' })], { description: 'Synthetic probes of every upstream, feeding the signal where real traffic gives too little evidence (backups before an incident, a primary the shift has emptied). Shown apart from real traffic in /status. false turns them off. @default on' }))
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
