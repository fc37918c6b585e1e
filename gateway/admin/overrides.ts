/**
 * GET /overrides (held now), POST /overrides (set one: { kind, route,
 * upstream?, share?, state?, reason, ttl }) and DELETE /overrides/:id.
 * The body is checked against its TypeBox schema with Ajv, then against the
 * routes of the moment (control/overrides.ts); what fails is a 400
 * GW_ERR_ADMIN_OVERRIDE_INVALID that says why.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { DURATION_PATTERN, PERCENT_PATTERN, parseDuration } from '../core/units.js'
import type { Override, OverrideRequest } from '../control/overrides.js'

export const OverrideBody = Type.Object({
  kind: Type.Union([Type.Literal('pin'), Type.Literal('drain'), Type.Literal('breaker'), Type.Literal('pause')]),
  route: Type.String({ minLength: 1, maxLength: 200 }),
  upstream: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  /** pin: 0..1, or a percentage such as "50%". */
  share: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.String({ pattern: PERCENT_PATTERN })])),
  state: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('closed')])),
  reason: Type.String({ minLength: 1, maxLength: 500 }),
  /** How long it holds: 30s, 10m, 2h (at most 24h). */
  ttl: Type.String({ pattern: DURATION_PATTERN })
}, { additionalProperties: false })
export type OverrideBodyDoc = Static<typeof OverrideBody>

const ajv = new Ajv({ allErrors: false, strict: true })
const validateBody = ajv.compile<OverrideBodyDoc>(OverrideBody)

export type SetResult = { readonly ok: true, readonly override: Override } | { readonly ok: false, readonly detail: string }

export interface OverridesApi {
  list (): Promise<readonly Override[]> | readonly Override[]
  set (req: OverrideRequest): Promise<SetResult> | SetResult
  clear (id: string): Promise<Override | null> | Override | null
}

/** The body as an OverrideRequest, or why not. */
export function parseOverrideBody (body: unknown): OverrideRequest | string {
  if (!validateBody(body)) {
    const e = validateBody.errors?.[0]
    const where = e?.instancePath === '' || e?.instancePath === undefined ? 'body' : e.instancePath.slice(1)
    return `${where}: ${e?.message ?? 'invalid'}${e?.keyword === 'additionalProperties' ? ` (${String(e.params.additionalProperty)})` : ''}`
  }
  const share = typeof body.share === 'string' ? Number.parseFloat(body.share) / 100 : body.share
  if (share !== undefined && share > 1) return 'share: at most 100%'
  return { kind: body.kind, route: body.route, upstream: body.upstream, share, state: body.state, reason: body.reason, ttlMs: parseDuration(body.ttl) }
}

export function registerOverrides (app: FastifyInstance, prefix: string, api: OverridesApi,
  invalid: (reply: FastifyReply, requestId: string, detail: string) => Promise<FastifyReply>,
  notFound: (reply: FastifyReply, requestId: string) => Promise<FastifyReply>): void {
  app.get(`${prefix}/overrides`, async () => ({ overrides: await api.list() }))
  app.post(`${prefix}/overrides`, async (req, reply) => {
    const parsed = parseOverrideBody(req.body)
    if (typeof parsed === 'string') return await invalid(reply, req.id, parsed)
    const r = await api.set(parsed)
    if (!r.ok) return await invalid(reply, req.id, r.detail)
    return await reply.code(201).header('cache-control', 'no-store').send({ override: r.override })
  })
  app.delete(`${prefix}/overrides/:id`, async (req, reply) => {
    const cleared = await api.clear((req.params as { id: string }).id)
    return cleared === null ? await notFound(reply, req.id) : { cleared }
  })
}
