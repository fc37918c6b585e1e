export { IncidentTracker, type Incident, type Impact, type Severity, type RouteAvailable, type RouteTally } from './tracker.js'
export { renderReport } from './report.js'
