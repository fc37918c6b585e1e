/**
 * Every response the gateway makes itself is an RFC 9457 problem document
 * with the error's stable code, the request id, and the names (never the
 * addresses) of the route and upstream involved.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { ErrorSpec } from '../core/errors.js'
import { tagBytesOut, tagError } from './response-tag.js'

export interface ProblemContext {
  readonly requestId: string
  readonly route?: string | undefined
  readonly upstream?: string | undefined
  readonly detail?: string | undefined
  readonly retryAfterSeconds?: number | undefined
  /** More response headers (names lower-case, values header-safe: the rate-limit fields). */
  readonly headers?: Readonly<Record<string, string>> | undefined
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
  if (ctx.headers !== undefined) Object.assign(headers, ctx.headers)
  tagError(res, spec.code)
  tagBytesOut(res, headers['content-length'] as number)
  res.writeHead(spec.status, headers)
  res.end(body)
}

/**
 * The problem as a raw HTTP/1.1 response that closes the connection, for
 * sockets node:http has handed over (unparsable requests, Upgrade, CONNECT).
 * Every value written is header-safe: codes, request ids and policy names.
 */
export function endSocketWithProblem (socket: Duplex, spec: ErrorSpec, ctx: ProblemContext): void {
  const body = problemBody(spec, ctx)
  let head = `HTTP/1.1 ${spec.status} ${STATUS_CODES[spec.status] ?? 'Error'}\r\n` +
    `content-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\n` +
    `x-gateway-error: ${spec.code}\r\nx-request-id: ${ctx.requestId}\r\n`
  if (ctx.upstream !== undefined) head += `x-gateway-upstream: ${ctx.upstream}\r\n`
  if (ctx.retryAfterSeconds !== undefined) head += `retry-after: ${ctx.retryAfterSeconds}\r\n`
  socket.end(`${head}connection: close\r\n\r\n${body}`)
}
