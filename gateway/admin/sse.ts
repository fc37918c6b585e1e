/**
 * A server-sent event stream on a hijacked fastify reply: the headers, one
 * `event:` (and optional `id:`) per message, a comment line every 15 s so
 * proxies do not close an idle stream, and clean-up when the client goes.
 */
import type { FastifyReply } from 'fastify'

export interface EventStream {
  send (event: string, data: object, id?: number): void
  /** Runs once the client has gone. */
  onClose (fn: () => void): void
}

export function openEventStream (reply: FastifyReply): EventStream {
  reply.hijack()
  const res = reply.raw
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-content-type-options': 'nosniff' })
  const ping = setInterval(() => res.write(': ping\n\n'), 15_000)
  ping.unref()
  res.on('close', () => { clearInterval(ping) })
  return {
    send: (event, data, id) => { res.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`) },
    onClose: fn => { res.on('close', fn) }
  }
}
