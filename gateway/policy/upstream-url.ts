/**
 * Upstream URLs, checked strictly: the WHATWG URL parser alone accepts hosts
 * like `a_b$c`, empty ports, credentials (which would then show in /status)
 * and numeric shorthands like `http://127.1`. Accepted here:
 * `http(s)://host[:port][/base-path]`, where host is a dotted-quad IPv4
 * address, a bracketed IPv6 address or a DNS name (letters, digits and
 * hyphens in dot-separated labels of at most 63 characters, at most 253 in
 * all), and port is 1–65535. No user info, query or fragment.
 */
import { isIPv4, isIPv6 } from 'node:net'

export type UrlCheck = { ok: true, url: URL } | { ok: false, message: string }

const EXAMPLE = 'write a URL like http://10.0.0.5:8080 or https://pay.internal/api'
const LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/

/** Parses an upstream URL; on failure, what is wrong and how to fix it. */
export function checkUpstreamUrl (text: string): UrlCheck {
  const fail = (what: string): UrlCheck => ({ ok: false, message: `${JSON.stringify(text)} is not a valid upstream URL: ${what} (${EXAMPLE})` })
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text)
  if (scheme === null) return fail('it must start with http:// or https://')
  if (!/^https?$/i.test(scheme[1] as string)) return fail(`the scheme must be http or https, not ${scheme[1] as string}`)
  const rest = text.slice(scheme[0].length)
  if (/[\s\\]/.test(rest)) return fail('it must not contain spaces or backslashes')
  if (rest.includes('?') || rest.includes('#')) return fail('a query (?…) or fragment (#…) is not allowed; the request\'s own query is forwarded')
  const slash = rest.indexOf('/')
  const authority = slash === -1 ? rest : rest.slice(0, slash)
  if (authority.includes('@')) return fail('credentials (user:password@) are not allowed in the URL, where /status and the logs would show them; remove them')
  const hostPort = splitHostPort(authority)
  if (typeof hostPort === 'string') return fail(hostPort)
  const hostProblem = checkHost(hostPort.host)
  if (hostProblem !== null) return fail(hostProblem)
  if (hostPort.port !== null) {
    if (!/^[0-9]{1,5}$/.test(hostPort.port)) return fail(hostPort.port === '' ? 'the port after ":" is missing' : `the port "${hostPort.port}" is not a number`)
    const port = Number(hostPort.port)
    if (port === 0) return fail('port 0 means "any free port" to a server, an upstream cannot be reached on it; use its real port, 1 to 65535')
    if (port > 65535) return fail(`port ${port} is out of range; use a port from 1 to 65535`)
  }
  try {
    return { ok: true, url: new URL(text) }
  } catch {
    return fail('it cannot be parsed')
  }
}

/** `host:port`, `[v6]:port`, `host` → parts; a string says what is wrong. */
function splitHostPort (authority: string): { host: string, port: string | null } | string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']')
    if (end === -1) return 'the IPv6 address is missing its closing "]"'
    const after = authority.slice(end + 1)
    if (after !== '' && !after.startsWith(':')) return `unexpected "${after}" after the IPv6 address`
    return { host: authority.slice(0, end + 1), port: after === '' ? null : after.slice(1) }
  }
  const colon = authority.indexOf(':')
  if (colon === -1) return { host: authority, port: null }
  if (authority.indexOf(':', colon + 1) !== -1) return 'an IPv6 address must be written in brackets, e.g. http://[::1]:8080'
  return { host: authority.slice(0, colon), port: authority.slice(colon + 1) }
}

/** Null when `host` is a bracketed IPv6, a dotted-quad IPv4 or a DNS name. */
function checkHost (host: string): string | null {
  if (host === '') return 'the host is missing'
  if (host.startsWith('[')) {
    const inner = host.slice(1, -1)
    return isIPv6(inner) && !inner.includes('%') ? null : `"${inner}" is not a valid IPv6 address`
  }
  const name = host.endsWith('.') ? host.slice(0, -1) : host
  const labels = name.split('.')
  // As in the URL standard, a host whose last label is a number is an IPv4
  // address; only the dotted-quad form is accepted (not 127.1 or 0x7f.1).
  if (/^[0-9]+$/.test(labels[labels.length - 1] as string) || /^0x/i.test(labels[labels.length - 1] as string)) {
    return isIPv4(name) ? null : `"${host}" is not a valid IPv4 address; write four numbers 0–255 without leading zeros, e.g. 10.0.0.5`
  }
  const hostHint = 'use letters, digits and "-" in labels separated by "."'
  if (name.length > 253) return `the host name is ${name.length} characters long, more than 253`
  for (const label of labels) {
    if (label === '') return `host "${host}" has an empty label (two dots in a row, or a leading dot)`
    if (label.length > 63) return `the host name label "${label.slice(0, 20)}…" is ${label.length} characters long, more than 63`
    if (!LABEL_RE.test(label)) return `host "${host}" is not a valid host name; ${hostHint}, not starting or ending with "-"`
  }
  return null
}
