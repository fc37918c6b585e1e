/**
 * Reads, parses, validates and compiles a policy file. Never throws for a bad
 * file: every problem comes back as a located issue so one run of
 * `gateway check` lists them all. The bytes are checked first (size, UTF-8;
 * see input.ts), then the YAML (syntax, aliases), the schema and the
 * cross-field rules.
 */
import { parsePolicyText } from './source.js'
import { decodePolicyBytes, readPolicyBytes, sizeIssue } from './input.js'
import { validatePolicy } from './validate.js'
import { readFileSync } from 'node:fs'
import { compilePolicy } from './compile.js'
import type { PolicyIssue } from './issues.js'
import type { PolicySnapshot } from './snapshot.js'
import type { PolicyDoc } from './schema.js'

/** Why a policy was refused; each is an entry of ERRORS (gateway/core/errors.ts). */
export type LoadCode =
  | 'GW_ERR_POLICY_INVALID' | 'GW_ERR_POLICY_UNREADABLE'
  | 'GW_ERR_POLICY_TOO_LARGE' | 'GW_ERR_POLICY_ENCODING' | 'GW_ERR_POLICY_ALIASES'

export type LoadResult =
  | { ok: true, snapshot: PolicySnapshot }
  | { ok: false, code: LoadCode, issues: PolicyIssue[] }

type Env = Readonly<Record<string, string | undefined>>

/**
 * Validate policy text, or raw bytes (decoded as strict UTF-8); `file` is
 * only used in messages. Never throws: even an unexpected exception comes
 * back as a coded issue.
 */
export function loadPolicyText (file: string, text: string | Uint8Array, env: Env = process.env): LoadResult {
  try {
    if (typeof text !== 'string') {
      const decoded = decodePolicyBytes(file, text)
      return decoded.ok ? loadDecoded(file, decoded.text, env) : decoded
    }
    const tooLarge = sizeIssue(file, Buffer.byteLength(text, 'utf8'))
    if (tooLarge !== null) return { ok: false, code: 'GW_ERR_POLICY_TOO_LARGE', issues: [tooLarge] }
    return loadDecoded(file, text, env)
  } catch (err) {
    return unexpected(file, err)
  }
}

function loadDecoded (file: string, text: string, env: Env): LoadResult {
  const parsed = parsePolicyText(file, text)
  if (!parsed.ok) return parsed
  const valid = validatePolicy(parsed.source)
  if (valid.ok) {
    const compiled = compilePolicy(valid.doc, parsed.source, env, readText)
    return compiled.ok ? compiled : { ok: false, code: 'GW_ERR_POLICY_INVALID', issues: compiled.issues }
  }
  // Also run the cross-field checks on the invalid document, so one run lists
  // duplicate names or port clashes alongside the schema errors. Its shape is
  // not guaranteed, so anything it trips over is dropped.
  const issues = [...valid.issues]
  try {
    const compiled = compilePolicy(parsed.source.data as PolicyDoc, parsed.source, env, readText)
    if (!compiled.ok) {
      const seen = new Set(issues.map(i => i.path))
      issues.push(...compiled.issues.filter(i => !seen.has(i.path)))
    }
  } catch {}
  issues.sort((a, b) => a.line - b.line || a.column - b.column)
  return { ok: false, code: 'GW_ERR_POLICY_INVALID', issues }
}

/** Reads (at most MAX_POLICY_BYTES + 1 bytes of) `file` and validates it. Never throws. */
export async function loadPolicyFile (file: string, env: Env = process.env): Promise<LoadResult> {
  let bytes: Uint8Array
  try {
    bytes = await readPolicyBytes(file)
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException | null)?.code ?? 'read error'
    return { ok: false, code: 'GW_ERR_POLICY_UNREADABLE', issues: [{ file, path: '', line: 0, column: 0, message: `cannot read the file (${reason})` }] }
  }
  return loadPolicyText(file, bytes, env)
}

/** A bug (or a document too deep for the parser) as an issue: no stack, no internal paths. */
function unexpected (file: string, err: unknown): LoadResult {
  const e = err instanceof Error ? err : new Error(String(err))
  const deep = e instanceof RangeError && /call stack/i.test(e.message)
  const message = deep
    ? 'the document is nested too deeply to be read; flatten it'
    : `could not be checked: unexpected ${e.name} (${e.message.split('\n')[0] ?? ''}); this is a gateway bug, please report it`
  return { ok: false, code: 'GW_ERR_POLICY_INVALID', issues: [{ file, path: '', line: 1, column: 1, message }] }
}

/** TLS files named by the policy, read at each load (small PEM files; loads are off the request path). */
function readText (file: string): string {
  return readFileSync(file, 'utf8')
}
