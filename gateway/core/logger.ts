/**
 * Structured logging (pino, the logger fastify already ships). The data plane
 * logs only failures; never request bodies, tokens or upstream URLs with
 * credentials.
 */
import { pino, destination } from 'pino'

export interface Logger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
  debug (obj: object, msg: string): void
}

/** JSON lines on stderr; level from `GATEWAY_LOG_LEVEL` (default `info`). */
export function createLogger (level = process.env.GATEWAY_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { svc: 'gateway' } }, destination({ fd: 2, sync: false }))
}

const noop = (): void => {}
export const silentLogger: Logger = Object.freeze({ info: noop, warn: noop, error: noop, debug: noop })
