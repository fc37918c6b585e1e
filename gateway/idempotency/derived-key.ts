/**
 * Dedupe windows for requests that carry no key: the key is derived from
 * the request itself (idempotency.keyFrom), so "the same SMS to the same
 * phone" is the same key however the sender retries it.
 *
 * Pure: it reads only what it is given. The values of the parts, each
 * normalised, are hashed together (SHA-256 over their JSON array, so part
 * boundaries cannot be forged by a value that contains a separator). A part
 * that cannot be read, or is empty once normalised, makes the whole key
 * missing: an empty phone must not become one key that every malformed
 * message shares.
 */
import { createHash } from 'node:crypto'
import type { DerivedKeyConfig, KeyNormalizer, KeyPart } from '../policy/snapshot.js'

/** What a derived key is made from. `header` returns the first field with that lower-case name. */
export interface RequestFacts {
  readonly method: string
  /** The request target (path and query) as forwarded. */
  readonly target: string
  readonly header: (lowerName: string) => string | null
  /** The whole body when the route reads it (needsBody), else null. */
  readonly body: Buffer | null
}

/** A derived key, or why there is none (safe to show the client: it names the part, never its value). */
export type Derived = { readonly key: string } | { readonly missing: string }

/** Prefix of derived keys in the store, apart from any key a client could send on another route setup. */
export const DERIVED_PREFIX = 'kf:'

const NOT_DIGIT = /[^0-9]/g
/** Objects and arrays deeper than this are not made canonical: a hostile body must not exhaust the stack. */
const MAX_DEPTH = 32
const TOO_DEEP = Symbol('too deep')
const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/

export function deriveKey (cfg: DerivedKeyConfig, facts: RequestFacts): Derived {
  let doc: unknown
  if (cfg.needsBody) {
    const parsed = parseBody(facts.body)
    if (typeof parsed === 'string') return { missing: parsed }
    doc = parsed.doc
  }
  const values: string[] = []
  for (const part of cfg.parts) {
    const raw = read(part, facts, doc)
    if (raw === null) return { missing: `${describe(part)} is missing` }
    if (raw === TOO_DEEP) return { missing: `${describe(part)} is nested more than ${MAX_DEPTH} levels deep` }
    const value = part.from === 'method' || part.from === 'path' ? raw : normalize(raw, part.normalize)
    if (value === '') return { missing: `${describe(part)} is empty` }
    values.push(value)
  }
  return { key: DERIVED_PREFIX + createHash('sha256').update(JSON.stringify(values)).digest('hex') }
}

/** How the policy names a part, for messages. */
export function describe (part: KeyPart): string {
  switch (part.from) {
    case 'method': return 'the method'
    case 'path': return 'the path'
    case 'header': return `header ${part.name}`
    case 'query': return `query parameter ${part.name}`
    case 'body': return `body field ${part.pointer}`
  }
}

function parseBody (body: Buffer | null): { doc: unknown } | string {
  if (body === null || body.length === 0) return 'the request has no body to read the key from'
  try {
    return { doc: JSON.parse(body.toString('utf8')) }
  } catch {
    return 'the body is not JSON'
  }
}

function read (part: KeyPart, facts: RequestFacts, doc: unknown): string | null | typeof TOO_DEEP {
  switch (part.from) {
    case 'method': return facts.method
    case 'path': {
      const q = facts.target.indexOf('?')
      return q === -1 ? facts.target : facts.target.slice(0, q)
    }
    case 'header': return facts.header(part.name)
    case 'query': {
      const q = facts.target.indexOf('?')
      return q === -1 ? null : new URLSearchParams(facts.target.slice(q + 1)).get(part.name)
    }
    case 'body': return scalar(pointAt(doc, part.tokens))
  }
}

/** RFC 6901: the value at the pointer's tokens, or undefined. Arrays take decimal indexes only. */
function pointAt (doc: unknown, tokens: readonly string[]): unknown {
  let at = doc
  for (const t of tokens) {
    if (Array.isArray(at)) {
      if (!ARRAY_INDEX.test(t)) return undefined
      at = at[Number(t)]
    } else if (at !== null && typeof at === 'object' && Object.hasOwn(at, t)) {
      at = (at as Record<string, unknown>)[t]
    } else return undefined
  }
  return at
}

/** Strings as they are, numbers and booleans as JSON writes them, objects and arrays as canonical JSON; null and absent are missing. */
function scalar (v: unknown): string | null | typeof TOO_DEEP {
  if (v === undefined || v === null) return null
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  try {
    return canonical(v, 0)
  } catch (err) {
    if (err === TOO_DEEP) return TOO_DEEP
    throw err
  }
}

function canonical (v: unknown, depth: number): string {
  if (depth > MAX_DEPTH) throw TOO_DEEP
  if (Array.isArray(v)) return `[${v.map(x => canonical(x, depth + 1)).join(',')}]`
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    return `{${Object.keys(o).sort().map(k => `${JSON.stringify(k)}:${canonical(o[k], depth + 1)}`).join(',')}}`
  }
  return JSON.stringify(v)
}

function normalize (value: string, steps: readonly KeyNormalizer[]): string {
  let s = value
  for (const step of steps) {
    if (step === 'trim') s = s.trim()
    else if (step === 'lowercase') s = s.toLowerCase()
    else s = s.replace(NOT_DIGIT, '')
  }
  return s
}
