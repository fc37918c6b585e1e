/** The data plane ↔ control plane seam: the outcome sink, the views, and how the control plane sees routes. */
export type { OutcomeSink, ControlRoute, ControlUpstream, ControlTarget } from './ports.js'
export { RouteView, RouteViews } from './route-view.js'
