/**
 * GET /events: recent state changes as JSON (`?since=<seq>&limit=<n>`), and
 * GET /events/stream: the same as server-sent events, starting with what
 * follows `since` (or Last-Event-ID), then live.
 */
import type { FastifyInstance } from 'fastify'
import type { EventLog } from '../events/log.js'
import { openEventStream } from './sse.js'

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
    const stream = openEventStream(reply)
    const send = (e: { seq: number }): void => { stream.send('gateway', e, e.seq) }
    for (const e of log.since(since)) send(e)
    stream.onClose(log.subscribe(send))
  })
}
