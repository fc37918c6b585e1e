/**
 * A request refused before its body is read (no route, rate limited, shed,
 * overloaded). node:http reads and discards an unread body once the
 * response has ended, so a small declared body keeps the connection: a
 * refused flood of small POSTs costs no new connections. A chunked or large
 * body, or one the client holds back for a 100 Continue it will not get,
 * closes the connection instead: the gateway never reads much for nothing,
 * and never parses where a held-back body should be as the next request.
 */
import type { ServerResponse } from 'node:http'
import { awaitingContinue } from './continue.js'

/** Largest declared body discarded to keep the connection (nginx's lingering close reads about as much). */
export const DISCARD_BODY_LIMIT = 64 * 1024

/** `scan`: what the request's headers declare (proxy/headers.ts ScannedRequest). */
export function refuseUnreadBody (res: ServerResponse, scan: { readonly hasBody: boolean, readonly contentLength: number | null }): void {
  if (!scan.hasBody) return
  if (scan.contentLength !== null && scan.contentLength <= DISCARD_BODY_LIMIT && !awaitingContinue(res)) return
  res.shouldKeepAlive = false
}
