/**
 * The live dashboard in a real headless Chromium (Debian's chromium, driven
 * by playwright-core): 401 and a sign-in form without the token, then the
 * page signed in; during an S1 spike (primary 20 ms → 5 s) the backup share
 * shown on the page rises and the shift's events reach its timeline; an
 * operator's override shows in its banner. A screenshot of the spike goes to
 * test-output/dashboard.png (DASHBOARD_SCREENSHOT= another path).
 */
/// <reference lib="dom" />
import t from 'tap'
import { mkdir } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { request } from 'undici'
import { chromium } from 'playwright-core'
import { upstream, startGateway, policyYaml, route } from './helpers/harness.js'
import { steadyLoad } from './helpers/load.js'
import { buildSample } from '../gateway/dashboard/sample.js'

const TOKEN = 'wall-screen-token-77'
const SHOT = resolve(process.env.DASHBOARD_SCREENSHOT ?? 'test-output/dashboard.png')

t.test('buildSample: rates from two status documents, the primaries\' worst latency, holds per upstream', async t => {
  const doc = (n: number, shed: number): object => ({
    policy: { version: 'v9' },
    overrides: [{ id: 'ov-1', kind: 'drain', route: 'pay', upstream: 'b' }],
    routes: [{
      name: 'pay',
      responses: { '2xx': 10 * n, '5xx': n, shed },
      shift: { applied: 0.5, phase: 'shifted', thresholdMs: 1000, recoverMs: 500, quantile: 'p99', lastSignalMs: 4999.7 },
      upstreams: [
        { name: 'p', role: 'primary', share: 0.5, available: true, breaker: 'closed', total: { ok: 8 * n, failed: n }, window: { latencyMs: { p50: 10, p95: 20, p99: 30 } } },
        { name: 'q', role: 'primary', share: 0, available: true, total: { ok: n }, window: { latencyMs: { p50: 1, p95: 2, p99: 3000 } } },
        { name: 'b', role: 'backup', share: 0.5, available: false, total: { ok: 2 * n }, ejectedForMs: 10 }
      ]
    }]
  })
  const s = buildSample(doc(30, 4) as any, doc(10, 1) as any, 1_000, 2000)
  t.equal(s.version, 'v9')
  const r = s.routes[0]
  t.same(r?.traffic, { primaryPerS: 100, backupPerS: 20 }, '(9+1)·20 primary and 2·20 backup attempts over 2 s')
  t.same(r?.rates, { requestsPerS: 110, errorsPerS: 10, shedPerS: 1.5 })
  t.same(r?.latencyMs, { p50: 1, p95: 2, p99: 3000 }, 'the primary with the worst p99')
  t.match(r?.shift, { applied: 0.5, phase: 'shifted', signalMs: 4999.7, thresholdMs: 1000 })
  t.match(r?.upstreams[2], { name: 'b', available: false, ejected: true, overrides: ['drain'] })
  const first = buildSample(doc(30, 4) as any, null, 1_000, 1000)
  t.same(first.routes[0]?.rates, { requestsPerS: 0, errorsPerS: 0, shedPerS: 0 }, 'no earlier document: no rates')
})

t.test('headless Chromium: sign-in, the S1 spike drawn live, an override in the banner', async t => {
  const p = await upstream(t, { name: 'p', baseline: { latencyMs: 20 } })
  const b = await upstream(t, { name: 'b', baseline: { latencyMs: 20 } })
  const yaml = policyYaml(route('pay', '/', [{ name: 'p', url: p.url }, { name: 'b', url: b.url, role: 'backup' }],
    '    shift: { threshold: 1s, cooldown: 1s, recover: { threshold: 500ms, for: 500ms, step: 50%, interval: 250ms } }\n'))
    .replace('  port: 0\n\nroutes', '  port: 0\n  tokenEnv: GW_DASH_TOKEN\n\nroutes')
  const { url, adminUrl } = await startGateway(t, yaml, { env: { GW_DASH_TOKEN: TOKEN } })

  for (const path of ['/dashboard/stream', '/status']) {
    const res = await request(`${adminUrl}${path}`)
    await res.body.dump()
    t.equal(res.statusCode, 401, `${path} without the token`)
  }

  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-dev-shm-usage'] })
  t.teardown(async () => await browser.close())
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } })
  const problems: string[] = []
  page.on('pageerror', e => problems.push(`pageerror: ${e.message}`))
  page.on('console', m => { if (m.type() === 'error') problems.push(`console: ${m.text()}`) })

  const first = await page.goto(`${adminUrl}/`)
  t.equal(first?.status(), 401, 'GET / without the token: 401')
  t.ok(await page.locator('form input[name=token]').isVisible(), 'with a sign-in form')
  await page.fill('input[name=token]', 'not-the-token')
  await page.click('button[type=submit]')
  t.ok(await page.locator('.login-error').isVisible(), 'a wrong token is refused')
  await page.fill('input[name=token]', TOKEN)
  await page.click('button[type=submit]')
  problems.length = 0 // the browser logs the two 401 pages above as failed loads
  await page.waitForSelector('section.route[data-route="pay"]', { timeout: 10_000 })
  await page.waitForFunction(() => document.body.dataset.connection === 'live' && Number(document.body.dataset.samples) >= 2, null, { timeout: 10_000 })
  const share = async (): Promise<number> => Number(await page.locator('section.route[data-route="pay"] .backup-share').getAttribute('data-value'))
  t.equal(await share(), 0, 'before the spike: no backup share')

  const load = steadyLoad(t, `${url}/checkout`, 20)
  await new Promise(resolve => setTimeout(resolve, 2000))
  const spikeAt = Date.now()
  p.set({ latencyMs: 5000 })
  await page.waitForFunction(() => Number(document.querySelector('section.route[data-route="pay"] .backup-share')?.getAttribute('data-value')) >= 0.5, null, { timeout: 15_000 })
  t.ok(await share() >= 0.5, `the page shows the backup share rising (${await share()}) ${Date.now() - spikeAt} ms after the spike`)
  await page.waitForSelector('#timeline li[data-kind="shift.step"]', { timeout: 5000 })
  t.pass('the shift.step event is in the page\'s timeline')
  const rows = await page.locator('section.route[data-route="pay"] tr[data-upstream]').count()
  t.equal(rows, 2, 'both upstreams in the table')
  const charts = await page.locator('section.route[data-route="pay"] .chart canvas').count()
  t.ok(charts >= 3, `${charts} uPlot canvases drawn`)

  const ov = await request(`${adminUrl}/overrides`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'pin', route: 'pay', share: '50%', reason: 'ops holds half on the backup', ttl: '10m' })
  })
  t.equal(ov.statusCode, 201)
  const id = ((await ov.body.json()) as { override: { id: string } }).override.id
  await page.waitForSelector(`#overrides li[data-override-id="${id}"]`, { timeout: 5000 })
  t.match(await page.locator('#override-banner').innerText(), /ops holds half on the backup/, 'the override in the banner, with its reason')
  await page.waitForSelector('#timeline li[data-kind="override.set"]', { timeout: 5000 })

  await mkdir(dirname(SHOT), { recursive: true })
  await page.screenshot({ path: SHOT, fullPage: true })
  t.pass(`screenshot: ${SHOT}`)
  p.set({})
  await load.stop()
  t.same(problems, [], 'no script errors on the page')
})
