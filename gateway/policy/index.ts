/** The config plane: policy files in, immutable snapshots out. No I/O beyond reading the file. */
export { loadPolicyFile, loadPolicyText, type LoadResult } from './load.js'
export { PolicySchema, type PolicyDoc } from './schema.js'
export { formatIssue, PolicyError, type PolicyIssue } from './issues.js'
export { DEFAULT_TIMEOUTS } from './snapshot.js'
export type { PolicySnapshot, RouteConfig, UpstreamConfig, ListenerConfig, AdminConfig, TimeoutsConfig } from './snapshot.js'
export { PolicyWatcher } from './watcher.js'
