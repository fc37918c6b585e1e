/**
 * Dedupe windows for requests that carry no key: the key is derived from
 * the request itself (idempotency.keyFrom), so "the same SMS to the same
 * phone" is the same key however the sender retries it.
 *
 * Pure: it reads only what it is given. The values of the parts, each
 * normalised, are hashed together (SHA-256 over their JSON array, so part
 * boundaries cannot be forged by a value that contains a separator). A part
 * that cannot be read for certain makes the whole key missing:
 * - absent, or empty once normalised: an empty phone must not become one
 *   key that every malformed message shares;
 * - given twice (a repeated header field or query parameter): the gateway
 *   and the upstream could each take another one, so the key would not
 *   name what is delivered;
 * - a JSON number beyond 2^53, which JSON.parse has already rounded (two
 *   different account numbers would be one key);
 * - nested deeper than MAX_DEPTH (a hostile body must not exhaust the stack).
 */
import { createHash } from 'node:crypto'
import type { DerivedKeyConfig, KeyNormalizer, KeyPart } from '../policy/snapshot.js'

/** What a derived key is made from. */
export interface RequestFacts {
  readonly method: string
  /** The request target (path and query) as forwarded. */
  readonly target: string
  /** Every field with this lower-case name, in order. */
  readonly header: (lowerName: string) => readonly string[]
  /** The whole body when the route reads it (needsBody), else null. */
  readonly body: Buffer | null
}

/** A derived key, or why there is none (safe to show the client: it names the part, never its value). */
export type Derived = { readonly key: string } | { readonly missing: string }

/**
 * Prefix of derived keys in the store. It holds a space, which a client's
 * key may not (idempotent.ts validKey), so no client key can ever name a
 * derived window, even across a reload that turns keyFrom on or off.
 */
export const DERIVED_PREFIX = 'kf '

const NOT_DIGIT = /[^0-9]/g
const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/
/** Objects and arrays deeper than this are not made canonical. */
const MAX_DEPTH = 32
/** Strict UTF-8 (a byte that is not UTF-8 is not silently replaced: two bodies would read alike); a BOM is dropped. */
const UTF8 = new TextDecoder('utf-8', { fatal: true })

/** Why a value cannot be used, as the end of "body field /phone ...". */
class Unusable {
  constructor (readonly why: string) {}
}

export function deriveKey (cfg: DerivedKeyConfig, facts: RequestFacts): Derived {
  let doc: unknown
  if (cfg.needsBody) {
    const parsed = parseBody(facts.body)
    if (typeof parsed === 'string') return { missing: parsed }
    doc = parsed.doc
  }
  // Objects and arrays go in as [canonical JSON], so they never equal a string that spells the same text.
  const values: Array<string | [string]> = []
  for (const part of cfg.parts) {
    const raw = read(part, facts, doc)
    if (raw === null) return { missing: `${describe(part)} is missing` }
    if (raw instanceof Unusable) return { missing: `${describe(part)} ${raw.why}` }
    const text = typeof raw === 'string' ? raw : raw[0]
    const value = part.from === 'method' || part.from === 'path' ? text : normalize(text, part.normalize)
    if (value === '') return { missing: `${describe(part)} is empty` }
    values.push(typeof raw === 'string' ? value : [value])
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
    return { doc: JSON.parse(UTF8.decode(body)) }
  } catch {
    return 'the body is not JSON (UTF-8)'
  }
}

function read (part: KeyPart, facts: RequestFacts, doc: unknown): string | [string] | Unusable | null {
  switch (part.from) {
    case 'method': return facts.method
    case 'path': {
      const q = facts.target.indexOf('?')
      return q === -1 ? facts.target : facts.target.slice(0, q)
    }
    case 'header': return single(facts.header(part.name))
    case 'query': {
      const q = facts.target.indexOf('?')
      return q === -1 ? null : single(new URLSearchParams(facts.target.slice(q + 1)).getAll(part.name))
    }
    case 'body': return value(pointAt(doc, part.tokens))
  }
}

function single (all: readonly string[]): string | Unusable | null {
  if (all.length > 1) return new Unusable(`is given ${all.length} times`)
  return all[0] ?? null
}

/** RFC 6901: the value at the pointer's tokens, or undefined. Arrays take decimal indexes only; only the body's own members are read. */
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
function value (v: unknown): string | [string] | Unusable | null {
  if (v === undefined || v === null) return null
  if (typeof v === 'string') return v
  const c = canonical(v, 0)
  return c instanceof Unusable || typeof v !== 'object' ? c : [c]
}

/** JSON text with sorted member names; `depth` 0 is the field itself (a number there "is" too large, deeper the field "holds" one). */
function canonical (v: unknown, depth: number): string | Unusable {
  if (Array.isArray(v) || (v !== null && typeof v === 'object')) {
    if (depth >= MAX_DEPTH) return new Unusable(`is nested more than ${MAX_DEPTH} levels deep`)
    const o = v as Record<string, unknown>
    const keys = Array.isArray(v) ? null : Object.keys(o).sort()
    const items: string[] = []
    for (const k of keys ?? v as unknown[]) {
      const item = canonical(keys === null ? k : o[k as string], depth + 1)
      if (item instanceof Unusable) return item
      items.push(keys === null ? item : `${JSON.stringify(k)}:${item}`)
    }
    return keys === null ? `[${items.join(',')}]` : `{${items.join(',')}}`
  }
  if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) return new Unusable(`${depth === 0 ? 'is' : 'holds'} a number too large to compare exactly (send it as a string)`)
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
