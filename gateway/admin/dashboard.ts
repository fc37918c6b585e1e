/**
 * The live dashboard: GET / (one page, no build step), its script and style
 * and the uPlot charting library under /dashboard/, and
 * GET /dashboard/stream, server-sent events: `sample` (dashboard/sampler.ts,
 * once a second) and `gateway` (the event log), history first, then live.
 *
 * With an admin token, a browser signs in once: GET / without it answers
 * 401 with a sign-in form, POST /dashboard/login with the right token sets
 * an HttpOnly, SameSite=Strict cookie that stands for the token on GET
 * requests only (EventSource cannot send an Authorization header). The
 * cookie never carries the token itself, and it cannot authorise a change
 * (POST, DELETE need the Bearer header), so a forged cross-site request
 * gains nothing. The page's code is not secret; every byte of data is
 * behind the token.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { readFileSync, existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { EventLog } from '../events/log.js'
import type { DashboardSampler } from '../dashboard/sampler.js'
import { openEventStream } from './sse.js'

export const SESSION_COOKIE = 'gateway_admin'
/** Twelve hours: a wall screen signs in once a shift. */
const SESSION_MAX_AGE_S = 12 * 3600
const HISTORY_EVENTS = 50

const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store'
}

interface Asset { readonly type: string, readonly body: Buffer }

/** The repository (or installed package) root: the first folder up from here holding dashboard/index.html. */
function assetRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'dashboard', 'index.html'))) return join(dir, 'dashboard')
    dir = dirname(dir)
  }
  throw new Error('dashboard/index.html not found next to the gateway')
}

function loadAssets (): Map<string, Asset> {
  const root = assetRoot()
  const require = createRequire(import.meta.url)
  const uplot = dirname(require.resolve('uplot/dist/uPlot.iife.min.js'))
  const read = (p: string): Buffer => readFileSync(p)
  return new Map([
    ['/', { type: 'text/html; charset=utf-8', body: read(join(root, 'index.html')) }],
    ['/dashboard/app.js', { type: 'text/javascript; charset=utf-8', body: read(join(root, 'app.js')) }],
    ['/dashboard/app.css', { type: 'text/css; charset=utf-8', body: read(join(root, 'app.css')) }],
    ['/dashboard/uplot.js', { type: 'text/javascript; charset=utf-8', body: read(join(uplot, 'uPlot.iife.min.js')) }],
    ['/dashboard/uplot.css', { type: 'text/css; charset=utf-8', body: read(join(uplot, 'uPlot.min.css')) }]
  ])
}

/** The cookie value that stands for `token`: an HMAC keyed by it, so the cookie never holds the token. */
export function sessionValue (token: string): string {
  return createHmac('sha256', token).update('gateway-dashboard-session-v1').digest('base64url')
}

/** Whether the request's cookie header carries the session for `token` (constant time). */
export function sessionMatches (cookieHeader: string | undefined, token: string): boolean {
  if (cookieHeader === undefined) return false
  const want = Buffer.from(sessionValue(token))
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue
    const got = Buffer.from(part.slice(eq + 1).trim())
    if (got.length === want.length && timingSafeEqual(got, want)) return true
  }
  return false
}

/** Paths served without the token: the page's code (no data) and the sign-in form's target. */
export function isPublicDashboardPath (path: string, method: string): boolean {
  return (path.startsWith('/dashboard/') && path !== '/dashboard/stream' && method === 'GET') || (path === '/dashboard/login' && method === 'POST')
}

const LOGIN_PAGE = (prefix: string, wrong: boolean): string => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gateway dashboard: sign in</title><link rel="stylesheet" href="${prefix}/dashboard/app.css"></head>
<body class="login"><main><h1>Gateway dashboard</h1>
<p>This admin API requires its token (the one named by <code>admin.tokenEnv</code>).</p>
${wrong ? '<p class="login-error" role="alert">That token is not the right one.</p>' : ''}
<form method="post" action="${prefix}/dashboard/login">
<label>Admin token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Open the dashboard</button></form></main></body></html>
`

export interface DashboardDeps {
  readonly sampler: DashboardSampler
  readonly events: EventLog
  /** null: no token, no sign-in. */
  readonly token: string | null
}

export function registerDashboard (app: FastifyInstance, prefix: string, deps: DashboardDeps): void {
  const assets = loadAssets()
  for (const [path, asset] of assets) {
    app.get(path === '/' ? `${prefix}/` : `${prefix}${path}`, async (_req, reply) =>
      await reply.headers(PAGE_HEADERS).type(asset.type).send(asset.body))
  }

  app.post(`${prefix}/dashboard/login`, async (req, reply) => {
    const token = deps.token
    const given = typeof (req.body as { token?: unknown } | null)?.token === 'string' ? (req.body as { token: string }).token : ''
    if (token === null) return await reply.redirect(`${prefix}/`, 303)
    if (!sessionMatches(`${SESSION_COOKIE}=${sessionValue(given)}`, token)) return await loginPage(reply, prefix, true)
    const cookie = `${SESSION_COOKIE}=${sessionValue(token)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MAX_AGE_S}`
    return await reply.header('set-cookie', cookie).header('cache-control', 'no-store').redirect(`${prefix}/`, 303)
  })

  app.get(`${prefix}/dashboard/stream`, (_req, reply) => {
    const stream = openEventStream(reply)
    for (const s of deps.sampler.history) stream.send('sample', s)
    for (const e of deps.events.since(Math.max(0, deps.events.lastSeq - HISTORY_EVENTS))) stream.send('gateway', e)
    stream.onClose(deps.sampler.subscribe(s => { stream.send('sample', s) }))
    stream.onClose(deps.events.subscribe(e => { stream.send('gateway', e) }))
  })
}

/** The sign-in form, as the 401 of a page request without the token. */
export async function loginPage (reply: FastifyReply, prefix: string, wrong = false): Promise<FastifyReply> {
  return await reply.code(401).headers(PAGE_HEADERS).header('www-authenticate', 'Bearer realm="gateway-admin"')
    .type('text/html; charset=utf-8').send(LOGIN_PAGE(prefix, wrong))
}
