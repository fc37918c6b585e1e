/** Health state: what the data plane recorded, for the status API and (next) the controllers. */
export { StatsRegistry } from './stats-registry.js'
export { UpstreamStats, type UpstreamStatsView } from './upstream-stats.js'
export { SlidingWindow, type WindowView } from './sliding-window.js'
export { OUTCOMES, OUTCOME_INDEX, statusOutcome, type Outcome, type InflightAttempt } from './outcome.js'
