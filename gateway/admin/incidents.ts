/**
 * GET /incidents (every incident kept, newest first, without its events),
 * GET /incidents/:id (the whole incident, events included) and
 * GET /incidents/:id/report (the post-incident report, Markdown).
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { renderReport, type Incident } from '../incidents/index.js'

export interface IncidentsApi {
  list (): readonly Incident[]
  get (id: string): Incident | null
}

export function registerIncidents (app: FastifyInstance, prefix: string, api: IncidentsApi,
  notFound: (reply: FastifyReply, requestId: string) => Promise<FastifyReply>): void {
  app.get(`${prefix}/incidents`, async () => ({
    incidents: [...api.list()].reverse().map(({ events, ...rest }) => ({ ...rest, eventCount: events.length }))
  }))
  app.get(`${prefix}/incidents/:id`, async (req, reply) => {
    const inc = api.get((req.params as { id: string }).id)
    return inc === null ? await notFound(reply, req.id) : inc
  })
  app.get(`${prefix}/incidents/:id/report`, async (req, reply) => {
    const inc = api.get((req.params as { id: string }).id)
    if (inc === null) return await notFound(reply, req.id)
    return await reply.type('text/markdown; charset=utf-8').header('cache-control', 'no-store').send(renderReport(inc))
  })
}
