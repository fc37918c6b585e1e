/**
 * Small load helpers for self-healing tests: sequential or paced requests
 * that record which upstream answered.
 */
import { request, Agent } from 'undici'

export interface Answer { status: number, upstream: string, ms: number }

export async function hit (url: string, dispatcher?: Agent, method: 'GET' | 'POST' = 'GET'): Promise<Answer> {
  const started = Date.now()
  const res = await request(url, { method, dispatcher, body: method === 'POST' ? '{}' : undefined })
  await res.body.text()
  return { status: res.statusCode, upstream: String(res.headers['x-gateway-upstream'] ?? ''), ms: Date.now() - started }
}

export async function hits (url: string, n: number, method: 'GET' | 'POST' = 'GET'): Promise<Answer[]> {
  const out: Answer[] = []
  for (let i = 0; i < n; i++) out.push(await hit(url, undefined, method))
  return out
}

export const countBy = (answers: readonly Answer[]): Record<string, number> => {
  const c: Record<string, number> = {}
  for (const a of answers) c[a.upstream] = (c[a.upstream] ?? 0) + 1
  return c
}

/**
 * Fires requests at a fixed rate (open loop) for `ms`, not waiting for
 * answers; resolves with every answer once all are done.
 */
export async function paced (url: string, perSecond: number, ms: number): Promise<Answer[]> {
  const agent = new Agent({ connections: 256 })
  const pending: Array<Promise<Answer | null>> = []
  const gap = 1000 / perSecond
  const start = Date.now()
  for (let i = 0; Date.now() - start < ms; i++) {
    pending.push(hit(url, agent).catch(() => null))
    const next = start + (i + 1) * gap
    await new Promise(resolve => setTimeout(resolve, Math.max(0, next - Date.now())))
  }
  const all = await Promise.all(pending)
  await agent.close()
  return all.filter((a): a is Answer => a !== null)
}

export async function until (cond: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms
  while (!await cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/**
 * GETs `url` every `everyMs` without waiting for the answers (an open loop,
 * so a slow upstream cannot slow the load down) until stopped; `stop()`
 * resolves once every request sent has ended. Stopped in teardown too.
 */
export function steadyLoad (t: { teardown (fn: () => unknown): void }, url: string, everyMs = 20): { stop: () => Promise<void> } {
  let stopped = false
  t.teardown(() => { stopped = true })
  const done = (async () => {
    const inflight: Array<Promise<unknown>> = []
    while (!stopped) {
      inflight.push(request(url).then(async r => await r.body.text(), () => {}))
      await new Promise(resolve => setTimeout(resolve, everyMs))
    }
    await Promise.all(inflight)
  })()
  return { stop: async () => { stopped = true; await done } }
}
