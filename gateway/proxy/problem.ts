/**
 * Every response the gateway makes itself is an RFC 9457 problem document
 * with the error's stable code, the request id, and the names (never the
 * addresses) of the route and upstream involved.
 */
import type { ServerResponse } from 'node:http'
import type { ErrorSpec } from '../core/errors.js'

export interface ProblemContext {
  readonly requestId: string
  readonly route?: string | undefined
  readonly upstream?: string | undefined
  readonly detail?: string | undefined
  readonly retryAfterSeconds?: number | undefined
}

export function problemBody (spec: ErrorSpec, ctx: ProblemContext): string {
  return JSON.stringify({
    type: `urn:gateway:error:${spec.code}`,
    title: spec.title,
    status: spec.status,
    detail: ctx.detail ?? spec.title,
    code: spec.code,
    instance: ctx.requestId,
    ...(ctx.route === undefined ? {} : { route: ctx.route }),
    ...(ctx.upstream === undefined ? {} : { upstream: ctx.upstream })
  })
}

/** Writes the problem if nothing was sent yet; otherwise cuts the response (the client sees a truncated body, as with nginx). */
export function sendProblem (res: ServerResponse, spec: ErrorSpec, ctx: ProblemContext): void {
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return
  }
  const body = problemBody(spec, ctx)
  const headers: Record<string, string | number> = {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': ctx.requestId,
    'x-gateway-error': spec.code
  }
  if (ctx.upstream !== undefined) headers['x-gateway-upstream'] = ctx.upstream
  if (ctx.retryAfterSeconds !== undefined) headers['retry-after'] = ctx.retryAfterSeconds
  res.writeHead(spec.status, headers)
  res.end(body)
}
