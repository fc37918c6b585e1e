/**
 * Parses policy text (YAML, which includes JSON) keeping node positions, so
 * every later error can point at a line and column.
 */
import { LineCounter, parseDocument, isMap, isPair, isScalar, type Document, type Node } from 'yaml'
import { type PolicyIssue, formatPath } from './issues.js'
import { checkAliases, MAX_ALIAS_EXPANSION } from './aliases.js'

export interface PolicySource {
  readonly file: string
  readonly text: string
  readonly data: unknown
  /** Line and column (1-based) of the node at `path`; of the nearest existing parent when missing. */
  locate (path: ReadonlyArray<string | number>, preferKey?: boolean): { line: number, column: number }
  issue (path: ReadonlyArray<string | number>, message: string, preferKey?: boolean): PolicyIssue
}

export type ParseCode = 'GW_ERR_POLICY_INVALID' | 'GW_ERR_POLICY_ALIASES'

export type ParseResult =
  | { ok: true, source: PolicySource }
  | { ok: false, code: ParseCode, issues: PolicyIssue[] }

export function parsePolicyText (file: string, text: string): ParseResult {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true })
  if (doc.errors.length > 0) {
    return {
      ok: false,
      code: 'GW_ERR_POLICY_INVALID',
      issues: doc.errors.map(e => {
        const pos = lineCounter.linePos(e.pos[0])
        return { file, path: '', line: pos.line, column: pos.col, message: `YAML syntax: ${firstLine(e.message)}` }
      })
    }
  }
  const aliasProblem = checkAliases(doc)
  if (aliasProblem !== null) {
    const pos = lineCounter.linePos(aliasProblem.offset)
    return { ok: false, code: 'GW_ERR_POLICY_ALIASES', issues: [{ file, path: '', line: pos.line, column: pos.col, message: aliasProblem.message }] }
  }
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSION })
  } catch (err) {
    // Backstop: checkAliases should have caught every alias problem first.
    const aliases = err instanceof ReferenceError
    return {
      ok: false,
      code: aliases ? 'GW_ERR_POLICY_ALIASES' : 'GW_ERR_POLICY_INVALID',
      issues: [{ file, path: '', line: 1, column: 1, message: `the YAML cannot be turned into data: ${firstLine(String((err as Error)?.message ?? err))}` }]
    }
  }
  const locate = (path: ReadonlyArray<string | number>, preferKey = false) => {
    const offset = offsetOf(doc, path, preferKey)
    const pos = lineCounter.linePos(offset)
    return { line: pos.line, column: pos.col }
  }
  const source: PolicySource = {
    file,
    text,
    data,
    locate,
    issue: (path, message, preferKey) => ({ file, path: formatPath(path), ...locate(path, preferKey), message })
  }
  return { ok: true, source }
}

function firstLine (msg: string): string {
  const i = msg.indexOf('\n')
  return i === -1 ? msg : msg.slice(0, i)
}

/** Offset of the deepest node along `path` that exists (the key's, when asked). */
function offsetOf (doc: Document, path: ReadonlyArray<string | number>, preferKey: boolean): number {
  let node: unknown = doc.contents
  let offset = rangeStart(node)
  for (let i = 0; i < path.length; i++) {
    const seg = path[i] as string | number
    if (isMap(node)) {
      const pair = node.items.find(p => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg))
      if (pair === undefined) return offset
      const last = i === path.length - 1
      if (last && preferKey) return rangeStart(pair.key)
      node = pair.value
      offset = rangeStart(pair.value) ?? rangeStart(pair.key)
    } else if (node !== null && typeof node === 'object' && 'items' in node && Array.isArray((node as { items: unknown[] }).items)) {
      const item = (node as { items: unknown[] }).items[Number(seg)]
      if (item === undefined) return offset
      node = item
      offset = rangeStart(item)
    } else {
      return offset
    }
  }
  return offset
}

function rangeStart (node: unknown): number {
  const range = (node as Node | null | undefined)?.range
  return range === undefined || range === null ? 0 : range[0]
}
