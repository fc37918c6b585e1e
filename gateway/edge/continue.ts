/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1). node:http would send the 100
 * at once; the listener takes the request through 'checkContinue' instead,
 * so the handler can answer a final status (404, 413, 503, …) without
 * asking for a body it will not read, and sends the 100 only when it starts
 * reading. The upstream never sees `Expect` (undici cannot send it).
 */
import type { ServerResponse } from 'node:http'

const WAITING = Symbol('gateway.expectsContinue')

type Marked = ServerResponse & { [WAITING]?: boolean }

/** The client waits for a 100 before it sends its body. */
export function expectContinue (res: ServerResponse): void {
  (res as Marked)[WAITING] = true
}

/** Sends the 100 if the client is waiting for one (once). */
export function sendContinue (res: ServerResponse): void {
  const m = res as Marked
  if (m[WAITING] === true) {
    m[WAITING] = false
    if (!res.headersSent && !res.destroyed) res.writeContinue()
  }
}

/** The client still waits for its 100 (its body is held back). */
export function awaitingContinue (res: ServerResponse): boolean {
  return (res as Marked)[WAITING] === true
}
