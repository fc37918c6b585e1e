/**
 * `gateway report [ID] --policy FILE`: prints the post-incident report of an
 * incident (the newest without ID) from a running gateway's admin API, found
 * (address and token) through the same policy file it runs with.
 */
import { adminClient, refused, takePolicy, unreachable, type Out } from './admin-client.js'

export const REPORT_USAGE = `usage: gateway report [ID] --policy FILE

Prints the post-incident report (Markdown) of incident ID, or of the newest
incident, from the gateway running with FILE (its admin address and token
come from the file and the environment).
  -p, --policy FILE   the running gateway's policy file
  --list              list the incidents instead (id, route, status, severity)
  -h, --help          print this help`

export async function report (args: readonly string[], out: Out, err: Out): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    out.write(REPORT_USAGE + '\n')
    return 0
  }
  const { file, rest } = takePolicy(args)
  let id: string | null = null
  let list = false
  for (const a of rest) {
    if (a === '--list') list = true
    else if (a.startsWith('-')) {
      err.write(`gateway report: unknown option ${a}\n${REPORT_USAGE}\n`)
      return 2
    } else id = a
  }
  if (file === null) {
    err.write(`gateway report: name the running gateway's policy with --policy FILE\n${REPORT_USAGE}\n`)
    return 2
  }
  const client = await adminClient(file, 'report')
  if (typeof client === 'string') {
    err.write(client + '\n')
    return 1
  }
  try {
    const idx = await client.call('GET', '/incidents')
    if (idx.status !== 200) {
      err.write(refused('report', idx.status, idx.body) + '\n')
      return 1
    }
    const incidents = (idx.body as { incidents: Array<{ id: string, route: string, status: string, severity: string, openedAt: string }> }).incidents
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
    const res = await client.call('GET', `/incidents/${encodeURIComponent(target)}/report`)
    if (res.status !== 200) {
      err.write(`gateway report: no incident ${target} (gateway report --list --policy ${file} lists them)\n`)
      return 1
    }
    out.write(String(res.body))
    return 0
  } catch (e) {
    err.write(unreachable('report', client.base, file, e) + '\n')
    return 1
  }
}
