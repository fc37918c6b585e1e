/**
 * GET /events: recent state changes as JSON (`?since=<seq>&limit=<n>`), and
 * GET /events/stream: the same as server-sent events, starting with what
 * follows `since` (or Last-Event-ID), then live.
 */
import type { FastifyInstance } from 'fastify'
import type { EventLog } from '../events/log.js'

const int = (v: unknown, dflt: number): number => {
  const n = Number(v)
  return Number.isInteger(n) && n >= 0 ? n : dflt
}

export function registerEvents (app: FastifyInstance, prefix: string, log: EventLog): void {
  app.get(`${prefix}/events`, async req => {
    const q = req.query as Record<string, unknown>
    return { events: log.since(int(q.since, 0), Math.max(1, int(q.limit, 1000))), lastSeq: log.lastSeq }
  })

  app.get(`${prefix}/events/stream`, (req, reply) => {
    const q = req.query as Record<string, unknown>
    const since = int(req.headers['last-event-id'] ?? q.since, log.lastSeq)
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    const send = (e: { seq: number }): void => { res.write(`id: ${e.seq}\nevent: gateway\ndata: ${JSON.stringify(e)}\n\n`) }
    for (const e of log.since(since)) send(e)
    const unsubscribe = log.subscribe(send)
    // A comment line every 15 s keeps proxies from closing an idle stream.
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000)
    ping.unref()
    res.on('close', () => {
      unsubscribe()
      clearInterval(ping)
    })
  })
}
