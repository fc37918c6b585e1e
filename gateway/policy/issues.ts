/**
 * A policy mistake, located: file, path (`routes[1].upstreams[0].url`),
 * line:column, what is wrong and how to fix it. Every stage (YAML syntax,
 * schema, cross-field checks) reports in this one shape so `gateway check`,
 * the logs and the admin API all say the same thing.
 */

export interface PolicyIssue {
  readonly file: string
  /** Dotted path with [index] for arrays; '' for the whole document. */
  readonly path: string
  readonly line: number
  readonly column: number
  readonly message: string
}

/** `policies/x.yaml:12:9 routes[1].upstreams[0].url: must be …` */
export function formatIssue (issue: PolicyIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.column}` : issue.file
  return issue.path === '' ? `${where} ${issue.message}` : `${where} ${issue.path}: ${issue.message}`
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/

/** ['routes', 1, 'match', 'headers', 'x-tenant'] → routes[1].match.headers["x-tenant"] */
export function formatPath (segments: ReadonlyArray<string | number>): string {
  let out = ''
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (IDENT.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

/** Thrown when a policy cannot be loaded; carries every issue found. */
export class PolicyError extends Error {
  readonly issues: readonly PolicyIssue[]
  readonly code: string

  constructor (issues: readonly PolicyIssue[], code = 'GW_ERR_POLICY_INVALID') {
    super(`policy has ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n` + issues.map(i => '  ' + formatIssue(i)).join('\n'))
    this.name = 'PolicyError'
    this.issues = issues
    this.code = code
  }
}
