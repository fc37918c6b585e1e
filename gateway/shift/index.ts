/** Decisions, free of I/O: the traffic-shift controller and outlier ejection. */
export { ShiftController, type ShiftInput, type ShiftView, type ShiftPhase, type Signal } from './controller.js'
export { evaluateOutliers } from './outlier.js'
