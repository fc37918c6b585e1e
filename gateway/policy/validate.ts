/**
 * Schema validation with Ajv, compiled once from the TypeBox schema, turning
 * Ajv's errors into located, human `PolicyIssue`s: unknown keys name the key
 * and suggest the closest allowed one; bad values carry the schema's x-hint.
 */
import { Ajv, type ErrorObject } from 'ajv'
import { PolicySchema, type PolicyDoc } from './schema.js'
import type { PolicySource } from './source.js'
import type { PolicyIssue } from './issues.js'
import { DURATION_PATTERN, MAX_DURATION_MS, exceedsMax } from '../core/units.js'

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true })
ajv.addKeyword({ keyword: 'x-hint', schemaType: 'string' })
// Largest duration or size (schema-kit.ts): huge values would overflow Node timers or budgets.
ajv.addKeyword({ keyword: 'x-max', type: 'string', schemaType: 'string', validate: (max: string, data: string) => !exceedsMax(data, max) })
const DURATION_RE = new RegExp(DURATION_PATTERN)
const validateFn = ajv.compile<PolicyDoc>(PolicySchema)

export function validatePolicy (source: PolicySource): { ok: true, doc: PolicyDoc } | { ok: false, issues: PolicyIssue[] } {
  if (validateFn(source.data)) return { ok: true, doc: source.data }
  const issues: PolicyIssue[] = []
  const seen = new Set<string>()
  for (const err of pruneAnyOf(validateFn.errors ?? [])) {
    const issue = toIssue(source, err)
    const key = `${issue.path}|${issue.message}`
    if (!seen.has(key)) {
      seen.add(key)
      issues.push(issue)
    }
  }
  return { ok: false, issues }
}

/**
 * Ajv reports every branch of a failed anyOf. A branch that failed on the
 * value's type at the anyOf's own place was the wrong shape altogether
 * ("must be a string, got a mapping" next to the real mistake inside the
 * mapping): its errors are dropped while another branch is left to explain.
 * The anyOf's own summary (with its hint) stays only when what is left is
 * about the value itself, not something deeper inside it.
 */
function pruneAnyOf (errors: readonly ErrorObject[]): ErrorObject[] {
  const drop = new Set<ErrorObject>()
  for (const a of errors) {
    if (a.keyword !== 'anyOf') continue
    const branches = new Map<string, ErrorObject[]>()
    for (const e of errors) {
      // The same anyOf fails for every value it applies to (two list items, two routes): only this value's errors.
      if (!e.schemaPath.startsWith(`${a.schemaPath}/`)) continue
      if (e.instancePath !== a.instancePath && !e.instancePath.startsWith(`${a.instancePath}/`)) continue
      const branch = e.schemaPath.slice(a.schemaPath.length + 1).split('/')[0] as string
      const list = branches.get(branch)
      if (list === undefined) branches.set(branch, [e])
      else list.push(e)
    }
    const wrongShape = [...branches.values()].filter(list => list.some(e => e.keyword === 'type' && e.instancePath === a.instancePath))
    if (wrongShape.length === 0 || wrongShape.length === branches.size) continue
    for (const list of wrongShape) for (const e of list) drop.add(e)
    const left = [...branches.values()].filter(list => !wrongShape.includes(list)).flat()
    if (left.some(e => e.instancePath !== a.instancePath)) drop.add(a)
  }
  const kept = errors.filter(e => !drop.has(e))
  // Never prune a refusal down to nothing to fix.
  return kept.length > 0 ? kept : [...errors]
}

function toIssue (source: PolicySource, err: ErrorObject): PolicyIssue {
  const path = pointerToPath(err.instancePath)
  const hint = (err.parentSchema as Record<string, unknown> | undefined)?.['x-hint']
  const hintText = typeof hint === 'string' ? ` (${hint})` : ''
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String(err.params.additionalProperty)
      const allowed = Object.keys((err.schema === false ? (err.parentSchema as { properties?: object })?.properties : undefined) ?? {})
      if (allowed.length === 0) {
        const patterns = Object.keys((err.parentSchema as { patternProperties?: object })?.patternProperties ?? {})
        return source.issue([...path, key], `key "${key}" is not valid here${patterns.length > 0 ? ` (keys must match ${patterns.join(' or ')})` : ''}`, true)
      }
      const suggestion = closest(key, allowed)
      const also = suggestion === undefined ? ` Allowed here: ${allowed.join(', ')}.` : ` Did you mean "${suggestion}"?`
      return source.issue([...path, key], `unknown key "${key}".${also}`, true)
    }
    case 'required':
      return source.issue(path, `missing required key "${String(err.params.missingProperty)}"`)
    case 'pattern':
      return source.issue(path, `${JSON.stringify(err.data)} is not valid${hintText === '' ? ` (must match ${String(err.params.pattern)})` : hintText}`)
    case 'enum':
      return source.issue(path, `${JSON.stringify(err.data)} is not one of ${(err.params.allowedValues as unknown[]).map(v => JSON.stringify(v)).join(', ')}`)
    case 'x-max': {
      const max = String(err.schema)
      return DURATION_RE.test(max)
        ? source.issue(path, `${JSON.stringify(err.data)} is too long: a duration may be at most ${max} (${MAX_DURATION_MS} ms); write a shorter one, e.g. 30s or 1h`)
        : source.issue(path, `${JSON.stringify(err.data)} is too large: a size may be at most ${max} (1 GiB); write a smaller one, e.g. 64kb or 10mb`)
    }
    case 'minItems':
      return source.issue(path, `must have at least ${String(err.params.limit)} entr${err.params.limit === 1 ? 'y' : 'ies'}`)
    case 'type':
      return source.issue(path, `must be ${article(String(err.params.type))}, got ${describe(err.data)}${hintText}`)
    default:
      return source.issue(path, `${err.message ?? 'is invalid'}${hintText}`)
  }
}

function pointerToPath (pointer: string): Array<string | number> {
  if (pointer === '') return []
  return pointer.slice(1).split('/').map(seg => {
    const s = seg.replace(/~1/g, '/').replace(/~0/g, '~')
    return /^[0-9]+$/.test(s) ? Number(s) : s
  })
}

function article (type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}

function describe (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  return `${typeof value} ${JSON.stringify(value)}`
}

/** The allowed key within edit distance 2 of a typo, if any. */
function closest (key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDist = 3
  for (const candidate of allowed) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase())
    if (d < bestDist) {
      best = candidate
      bestDist = d
    }
  }
  return best
}

function editDistance (a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] as number
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return row[b.length] as number
}
