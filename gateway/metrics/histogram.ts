/**
 * A Prometheus histogram read from LatencyBuckets at scrape time. prom-client's
 * own Histogram records per observation with a label lookup, too much for the
 * hot path; this collector has the shape prom-client's registry formats
 * (name, help, type and values with metricName), so it sits in the same
 * registry as the library's counters and gauges.
 */
import type { Metric } from 'prom-client'
import { LATENCY_BOUNDS_S, type LatencyBuckets } from '../core/latency-buckets.js'

type Labels = Record<string, string>
interface Value { readonly metricName: string, readonly labels: Record<string, string | number>, readonly value: number }

export function bucketHistogram (name: string, help: string, series: () => Iterable<readonly [Labels, LatencyBuckets]>): Metric {
  const collector = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: () => {
      const values: Value[] = []
      for (const [labels, b] of series()) {
        let cumulative = 0
        LATENCY_BOUNDS_S.forEach((le, i) => {
          cumulative += b.counts[i] as number
          values.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative })
        })
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: b.count })
        values.push({ metricName: `${name}_sum`, labels, value: b.sum })
        values.push({ metricName: `${name}_count`, labels, value: b.count })
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' }
    }
  }
  return collector as unknown as Metric
}
