/**
 * Process metrics (prom-client's defaults: CPU, memory, event-loop lag, GC,
 * handles), once per process: they describe the process, not a gateway, and
 * the library's collectors cannot be stopped, so every gateway in the
 * process (tests start many) shares one registry, made on the first scrape.
 */
import { Registry, collectDefaultMetrics } from 'prom-client'

let registry: Registry | null = null

export function processRegistry (): Registry {
  if (registry === null) {
    registry = new Registry()
    collectDefaultMetrics({ register: registry })
    // Gauges named like counters (promtool check metrics rejects them); the
    // same counts are in nodejs_active_handles / _requests / _resources by type.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name)
  }
  return registry
}
