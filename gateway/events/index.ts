/** State-change events: one shape, one log. */
export { EventLog, type EventSink } from './log.js'
export type { EventDraft, EventKind, GatewayEvent } from './types.js'
