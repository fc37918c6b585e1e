/**
 * The "full" gateway policy of the proxy bench: one realistic payment route
 * with every per-request self-healing mechanism on, so the bench measures
 * what they cost on the hot path:
 *   - timeouts (connect, response headers, and a total deadline per request),
 *   - a primary and a backup upstream (a second origin process),
 *   - latency-triggered shift to the backup (p95 over 3 s, trip at 1 s),
 *   - a circuit breaker per upstream,
 *   - outlier ejection,
 *   - retries with backoff and a retry budget.
 * Values follow policies/default.yaml's payment route. The origin answers in
 * well under a millisecond, so nothing ever trips: every request stays on the
 * primary, and the bench checks that afterwards (route-check.ts). Health
 * checks and idempotency keys are left out: the first is background work
 * rather than per-request cost, the second only acts on requests that carry
 * a key.
 */
import { HOST, type PolicySpec } from './targets.js';

/** The route's name and prefix; the bench requests {@link BENCH_PATH} on every target. */
export const PAYMENT_ROUTE = 'payments';
export const PAYMENT_PREFIX = '/pay/';
/** The path every target is measured with (same request bytes for all). */
export const BENCH_PATH = '/pay/checkout';
/** Upstream names in the full route. */
export const PRIMARY = 'pay-primary';
export const BACKUP = 'pay-backup';

/** What {@link paymentPolicyYaml} needs: the plain spec plus the backup origin's port. */
export interface PaymentPolicySpec extends PolicySpec {
  readonly backupPort: number;
}

/** The full policy: listener `public`, the admin API, the payment route. */
export function paymentPolicyYaml(spec: PaymentPolicySpec): string {
  return `version: ${spec.version}
listeners:
  - name: public
    host: ${HOST}
    port: ${spec.port}
admin:
  host: ${HOST}
  port: ${spec.adminPort}
routes:
  - name: ${PAYMENT_ROUTE}
    match:
      pathPrefix: ${PAYMENT_PREFIX}
    timeouts: { connect: 1s, responseHeaders: 10s, total: 30s }
    upstreams:
      - name: ${PRIMARY}
        url: http://${HOST}:${spec.originPort}
        role: primary
      - name: ${BACKUP}
        url: http://${HOST}:${spec.backupPort}
        role: backup
    shift:
      enforce: true
      signal: { quantile: p95, window: 3s, minSamples: 5 }
      threshold: 1s
      for: 300ms
      step: 50%
      interval: 250ms
      minShare: 10%
      cooldown: 5s
      recover: { threshold: 500ms, for: 3s, maxFor: 60s, step: 25%, interval: 1s }
    breaker:
      failureRate: 25%
      window: 5s
      minRequests: 10
      consecutiveFailures: 5
      openFor: 5s
      maxOpenFor: 60s
    outlier:
      consecutiveFailures: 5
      baseEjectionTime: 5s
      maxEjectionTime: 60s
      maxEjectionPercent: 50%
    retry:
      attempts: 2
      on: [connect-failure, reset, timeout, 502, 503, 504]
      backoff: { base: 25ms, max: 250ms }
      budget: { ratio: 20%, minPerSecond: 3, window: 10s }
`;
}
