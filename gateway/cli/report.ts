/**
 * `gateway report [ID] --policy FILE`: prints the post-incident report of an
 * incident (the newest without ID) from a running gateway's admin API, found
 * (address and token) through the same policy file it runs with.
 */
import { request } from 'undici'
import { loadPolicyFile } from '../policy/load.js'

export const REPORT_USAGE = `usage: gateway report [ID] --policy FILE

Prints the post-incident report (Markdown) of incident ID, or of the newest
incident, from the gateway running with FILE (its admin address and token
come from the file and the environment).
  -p, --policy FILE   the running gateway's policy file
  --list              list the incidents instead (id, route, status, severity)
  -h, --help          print this help`

type Out = { write: (s: string) => unknown }

export async function report (args: readonly string[], out: Out, err: Out): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    out.write(REPORT_USAGE + '\n')
    return 0
  }
  let file: string | null = null
  let id: string | null = null
  let list = false
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    if (a === '--policy' || a === '-p') file = args[++i] ?? null
    else if (a.startsWith('--policy=')) file = a.slice('--policy='.length)
    else if (a === '--list') list = true
    else if (a.startsWith('-')) {
      err.write(`gateway report: unknown option ${a}\n${REPORT_USAGE}\n`)
      return 2
    } else id = a
  }
  if (file === null) {
    err.write(`gateway report: name the running gateway's policy with --policy FILE\n${REPORT_USAGE}\n`)
    return 2
  }
  const loaded = await loadPolicyFile(file)
  if (!loaded.ok) {
    err.write(`gateway report: ${file} is not a valid policy [${loaded.code}] (gateway check ${file} says why)\n`)
    return 1
  }
  const admin = loaded.snapshot.admin
  if (admin === null || admin.port === 0) {
    err.write(`gateway report: ${file} has no admin block with a fixed port; the report is served by the admin API\n`)
    return 1
  }
  const host = admin.host === '0.0.0.0' || admin.host === '::' ? '127.0.0.1' : admin.host
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${admin.port}`
  const headers = admin.token === null ? {} : { authorization: `Bearer ${admin.token}` }
  try {
    const idx = await request(`${base}/incidents`, { headers })
    if (idx.statusCode !== 200) {
      await idx.body.dump()
      err.write(`gateway report: the admin API answered ${idx.statusCode} (${idx.statusCode === 401 ? 'wrong or missing token' : 'see its logs'})\n`)
      return 1
    }
    const incidents = ((await idx.body.json()) as { incidents: Array<{ id: string, route: string, status: string, severity: string, openedAt: string }> }).incidents
    if (list) {
      for (const i of incidents) out.write(`${i.id}  ${i.openedAt}  ${i.route}  ${i.status}  ${i.severity}\n`)
      if (incidents.length === 0) out.write('no incidents\n')
      return 0
    }
    const target = id ?? incidents[0]?.id
    if (target === undefined) {
      out.write('no incidents\n')
      return 0
    }
    const res = await request(`${base}/incidents/${encodeURIComponent(target)}/report`, { headers })
    const text = await res.body.text()
    if (res.statusCode !== 200) {
      err.write(`gateway report: no incident ${target} (gateway report --list --policy ${file} lists them)\n`)
      return 1
    }
    out.write(text)
    return 0
  } catch (e) {
    err.write(`gateway report: cannot reach the admin API at ${base} (${(e as NodeJS.ErrnoException).code ?? 'error'}); is the gateway running with ${file}?\n`)
    return 1
  }
}
