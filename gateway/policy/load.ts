/**
 * Reads, parses, validates and compiles a policy file. Never throws for a bad
 * file: every problem comes back as a located issue so one run of
 * `gateway check` lists them all.
 */
import { readFile } from 'node:fs/promises'
import { parsePolicyText } from './source.js'
import { validatePolicy } from './validate.js'
import { compilePolicy } from './compile.js'
import type { PolicyIssue } from './issues.js'
import type { PolicySnapshot } from './snapshot.js'
import type { PolicyDoc } from './schema.js'

export type LoadResult =
  | { ok: true, snapshot: PolicySnapshot }
  | { ok: false, code: 'GW_ERR_POLICY_INVALID' | 'GW_ERR_POLICY_UNREADABLE', issues: PolicyIssue[] }

type Env = Readonly<Record<string, string | undefined>>

/** Validate policy text; `file` is only used in messages. */
export function loadPolicyText (file: string, text: string, env: Env = process.env): LoadResult {
  const parsed = parsePolicyText(file, text)
  if (!parsed.ok) return { ok: false, code: 'GW_ERR_POLICY_INVALID', issues: parsed.issues }
  const valid = validatePolicy(parsed.source)
  if (valid.ok) {
    const compiled = compilePolicy(valid.doc, parsed.source, env)
    return compiled.ok ? compiled : { ok: false, code: 'GW_ERR_POLICY_INVALID', issues: compiled.issues }
  }
  // Also run the cross-field checks on the invalid document, so one run lists
  // duplicate names or port clashes alongside the schema errors. Its shape is
  // not guaranteed, so anything it trips over is dropped.
  const issues = [...valid.issues]
  try {
    const compiled = compilePolicy(parsed.source.data as PolicyDoc, parsed.source, env)
    if (!compiled.ok) {
      const seen = new Set(issues.map(i => i.path))
      issues.push(...compiled.issues.filter(i => !seen.has(i.path)))
    }
  } catch {}
  issues.sort((a, b) => a.line - b.line || a.column - b.column)
  return { ok: false, code: 'GW_ERR_POLICY_INVALID', issues }
}

export async function loadPolicyFile (file: string, env: Env = process.env): Promise<LoadResult> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? 'read error'
    return { ok: false, code: 'GW_ERR_POLICY_UNREADABLE', issues: [{ file, path: '', line: 0, column: 0, message: `cannot read the file (${reason})` }] }
  }
  return loadPolicyText(file, text, env)
}
