/**
 * The admin API on its own listener (127.0.0.1 by default), built with
 * fastify: GET /healthz (no token needed), GET /status, GET /metrics
 * (Prometheus), POST /reload. Every
 * endpoint is also served under /admin/ so `POST /admin/reload` works too.
 * Errors use the same problem shape as the data plane.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import { randomUUID } from 'node:crypto'
import { ERRORS, type ErrorSpec } from '../core/errors.js'
import type { AdminConfig } from '../policy/snapshot.js'
import { problemBody } from '../edge/problem.js'
import type { ReloadRecord } from '../policy/reload-record.js'
import { bearerMatches } from './auth.js'
import type { EventLog } from '../events/log.js'
import { registerEvents } from './events.js'
import { registerIncidents, type IncidentsApi } from './incidents.js'

export interface AdminApi {
  status (): object
  readonly events: EventLog
  reload (): Promise<ReloadRecord>
  health (): { ok: boolean, version: string, generation: number }
  /** The Prometheus text exposition (metrics/). */
  metrics (): Promise<{ contentType: string, body: string }>
  readonly incidents: IncidentsApi
}

export interface AdminServer {
  address (): { host: string, port: number }
  close (): Promise<void>
}

export async function startAdmin (config: AdminConfig, api: AdminApi): Promise<AdminServer> {
  // forceCloseConnections: an open SSE stream must not hold up shutdown.
  const app = Fastify({ logger: false, genReqId: () => randomUUID(), forceCloseConnections: true })
  const token = config.token

  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.replace(/^\/admin(?=\/)/, '').split('?')[0]
    if (token === null || path === '/healthz') return
    if (!bearerMatches(req.headers.authorization, token)) {
      reply.header('www-authenticate', 'Bearer realm="gateway-admin"')
      return await problem(reply, ERRORS.ADMIN_UNAUTHORIZED, req.id)
    }
  })

  for (const prefix of ['', '/admin']) {
    app.get(`${prefix}/healthz`, async (_req, reply) => {
      const h = api.health()
      return await reply.code(h.ok ? 200 : 503).send({ status: h.ok ? 'ok' : 'draining', version: h.version, generation: h.generation })
    })
    app.get(`${prefix}/status`, async () => api.status())
    app.get(`${prefix}/metrics`, async (_req, reply) => {
      const m = await api.metrics()
      return await reply.type(m.contentType).header('cache-control', 'no-store').send(m.body)
    })
    registerEvents(app, prefix, api.events)
    registerIncidents(app, prefix, api.incidents, async (reply, id) => await problem(reply, ERRORS.ADMIN_NOT_FOUND, id))
    app.post(`${prefix}/reload`, async (req, reply) => {
      const r = await api.reload()
      if (r.ok) return await reply.send(r)
      const spec = policySpec(r.code)
      return await reply.code(spec.status).type('application/problem+json')
        .send({ ...JSON.parse(problemBody(spec, { requestId: req.id, detail: `${r.issues?.length ?? 0} problem(s); the previous policy keeps serving` })), issues: r.issues })
    })
  }
  app.setNotFoundHandler(async (req, reply) => await problem(reply, ERRORS.ADMIN_NOT_FOUND, req.id))
  app.setErrorHandler(async (err: { statusCode?: number }, req, reply) =>
    await problem(reply, (err.statusCode ?? 500) < 500 ? ERRORS.BAD_REQUEST : ERRORS.INTERNAL, req.id))

  await app.listen({ host: config.host, port: config.port })
  return {
    address: () => addressOf(app, config),
    close: async () => { await app.close() }
  }
}

/** The ERRORS entry of a rejected reload's GW_ERR_POLICY_* code (POLICY_INVALID if unknown). */
function policySpec (code: string | undefined): ErrorSpec {
  const spec = Object.values(ERRORS).find((s: ErrorSpec) => s.code === code)
  return spec !== undefined && spec.code.startsWith('GW_ERR_POLICY_') ? spec : ERRORS.POLICY_INVALID
}

async function problem (reply: FastifyReply, spec: ErrorSpec, requestId: string): Promise<FastifyReply> {
  return await reply.code(spec.status).type('application/problem+json').header('x-gateway-error', spec.code)
    .header('x-request-id', requestId).header('cache-control', 'no-store')
    .send(problemBody(spec, { requestId }))
}

function addressOf (app: FastifyInstance, config: AdminConfig): { host: string, port: number } {
  const a = app.server.address()
  return typeof a === 'object' && a !== null ? { host: a.address, port: a.port } : { host: config.host, port: config.port }
}
