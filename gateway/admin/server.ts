/**
 * The admin API on its own listener (127.0.0.1 by default), built with
 * fastify: GET /healthz (no token needed), GET /status, GET /metrics
 * (Prometheus), POST /reload, the events and incidents, the overrides and
 * the live dashboard at GET /. Every endpoint is also served under /admin/
 * so `POST /admin/reload` works too. With a token, every request needs
 * `Authorization: Bearer <token>`, except that a browser signed in to the
 * dashboard may GET with its session cookie (admin/dashboard.ts). Errors use
 * the same problem shape as the data plane.
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
import { registerOverrides, type OverridesApi } from './overrides.js'
import { registerDashboard, isPublicDashboardPath, loginPage, sessionMatches } from './dashboard.js'
import { DashboardSampler } from '../dashboard/sampler.js'

export interface AdminApi {
  status (): object
  readonly events: EventLog
  reload (): Promise<ReloadRecord>
  health (): { ok: boolean, version: string, generation: number }
  /** The Prometheus text exposition (metrics/). */
  metrics (): Promise<{ contentType: string, body: string }>
  readonly incidents: IncidentsApi
  readonly overrides: OverridesApi
  /** Dashboard sampling interval (ms). @default 1000 */
  readonly dashboardSampleMs?: number
}

export interface AdminServer {
  address (): { host: string, port: number }
  close (): Promise<void>
}

export async function startAdmin (config: AdminConfig, api: AdminApi): Promise<AdminServer> {
  // forceCloseConnections: an open SSE stream must not hold up shutdown.
  const app = Fastify({ logger: false, genReqId: () => randomUUID(), forceCloseConnections: true })
  const token = config.token
  const sampler = new DashboardSampler(async () => await api.status(), api.dashboardSampleMs)
  app.addHook('onClose', async () => { sampler.stop() })
  // The dashboard's sign-in form posts application/x-www-form-urlencoded.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  app.addHook('onRequest', async (req, reply) => {
    const prefixed = /^\/admin(?=\/)/.test(req.url)
    const path = (req.url.replace(/^\/admin(?=\/)/, '').split('?')[0]) ?? ''
    if (token === null || path === '/healthz' || isPublicDashboardPath(path, req.method)) return
    if (bearerMatches(req.headers.authorization, token)) return
    if ((req.method === 'GET' || req.method === 'HEAD') && sessionMatches(req.headers.cookie, token)) return
    if (path === '/' && req.method === 'GET') return await loginPage(reply, prefixed ? '/admin' : '')
    reply.header('www-authenticate', 'Bearer realm="gateway-admin"')
    return await problem(reply, ERRORS.ADMIN_UNAUTHORIZED, req.id)
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
    registerOverrides(app, prefix, api.overrides,
      async (reply, id, detail) => await problem(reply, ERRORS.ADMIN_OVERRIDE_INVALID, id, detail),
      async (reply, id) => await problem(reply, ERRORS.ADMIN_NOT_FOUND, id))
    registerDashboard(app, prefix, { sampler, events: api.events, token })
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
  sampler.start()
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

async function problem (reply: FastifyReply, spec: ErrorSpec, requestId: string, detail?: string): Promise<FastifyReply> {
  return await reply.code(spec.status).type('application/problem+json').header('x-gateway-error', spec.code)
    .header('x-request-id', requestId).header('cache-control', 'no-store')
    .send(problemBody(spec, { requestId, detail }))
}

function addressOf (app: FastifyInstance, config: AdminConfig): { host: string, port: number } {
  const a = app.server.address()
  return typeof a === 'object' && a !== null ? { host: a.address, port: a.port } : { host: config.host, port: config.port }
}
