/** Shared building blocks with no dependencies on the rest of the gateway. */
export { ERRORS, type ErrorSpec, type ErrorName } from './errors.js'
export { ringIndex } from './ring.js'
export { LinkedList, type Linked } from './linked-list.js'
export { systemClock, ManualClock, type Clock } from './clock.js'
export { parseDuration, parsePercent, parseSize, DURATION_PATTERN, PERCENT_PATTERN, SIZE_PATTERN } from './units.js'
export { type Logger, createLogger, silentLogger } from './logger.js'
