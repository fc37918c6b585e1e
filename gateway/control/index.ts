/** The control plane: the control loop, and the decisions it runs (traffic shift, outlier ejection, active health checks). */
export { ControlLoop, type ControlDeps } from './loop.js'
export { ShiftController, type ShiftInput, type ShiftView, type ShiftPhase, type Signal } from './controller.js'
export { evaluateOutliers } from './outlier.js'
export { Prober, type ProbeConfig, type ProbeFlip, type ProbeTarget, type ProbeState } from './prober.js'
