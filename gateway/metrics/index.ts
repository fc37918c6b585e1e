export { GatewayMetrics, aggregateMetrics, type EventSource } from './registry.js'
export type { MetricsSource, MetricsRoute, MetricsUpstream, MetricsListener } from './source.js'
