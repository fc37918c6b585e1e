/**
 * Generates, from the one TypeBox schema (gateway/policy/schema.ts):
 *   - policies/schema.json       JSON Schema (draft-07) for editors, e.g. the
 *                                YAML language server;
 *   - docs/policy-reference.md   the human reference, one table per object.
 *
 * `npm run schema` writes both; test/schema-sync.test.ts fails when the
 * committed files differ from what the render functions below produce.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { PolicySchema } from '../gateway/policy/schema.js'
import { DURATION_PATTERN } from '../gateway/core/units.js'

/** The plain-JSON shape of the parts of a schema this script reads. */
export interface JsonSchema {
  type?: string
  description?: string
  properties?: Record<string, JsonSchema>
  patternProperties?: Record<string, JsonSchema>
  additionalProperties?: boolean | JsonSchema
  required?: string[]
  items?: JsonSchema
  enum?: unknown[]
  pattern?: string
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  minItems?: number
  maxItems?: number
  uniqueItems?: boolean
  anyOf?: JsonSchema[]
  const?: unknown
  [key: string]: unknown
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const SCHEMA_JSON_FILE = join(ROOT, 'policies', 'schema.json')
export const POLICY_REFERENCE_FILE = join(ROOT, 'docs', 'policy-reference.md')

/** The schema as plain JSON: the JSON round trip drops TypeBox's symbol keys. */
export function plainSchema (): JsonSchema {
  return JSON.parse(JSON.stringify(PolicySchema)) as JsonSchema
}

/** policies/schema.json: the schema with `$schema` (and its id/title) first. */
export function renderSchemaJson (): string {
  const { $id, title, description, ...rest } = plainSchema()
  const doc = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id,
    title,
    description,
    ...rest
  }
  return JSON.stringify(doc, null, 2) + '\n'
}

// ---------------------------------------------------------------------------
// docs/policy-reference.md

interface Section {
  /** `listeners[]`, `routes[].match`; '' for the top level. */
  readonly path: string
  /** The object schema whose keys the section's table lists. */
  readonly schema: JsonSchema
  /** The array holding these objects, when the section is a list entry. */
  readonly list: JsonSchema | null
}

const DEFAULT_RE = /\s*@default\s+(.*)$/s

/** Splits `text @default X` into the description and the default. */
export function splitDefault (description: string | undefined): { text: string, dflt: string | null } {
  if (description === undefined) return { text: '', dflt: null }
  const m = DEFAULT_RE.exec(description)
  if (m === null) return { text: description.trim(), dflt: null }
  return { text: description.slice(0, m.index).trim(), dflt: (m[1] as string).trim() }
}

const isObjectWithKeys = (s: JsonSchema | undefined): s is JsonSchema & { properties: Record<string, JsonSchema> } =>
  s !== undefined && s.type === 'object' && s.properties !== undefined

/** Every object with named keys, depth first in key order (the order of the file). */
function collectSections (schema: JsonSchema): Section[] {
  const out: Section[] = []
  const visit = (s: JsonSchema, path: string, list: JsonSchema | null): void => {
    out.push({ path, schema: s, list })
    for (const [key, prop] of Object.entries(s.properties ?? {})) {
      const childPath = path === '' ? key : `${path}.${key}`
      if (isObjectWithKeys(prop)) visit(prop, childPath, null)
      else if (prop.type === 'array' && isObjectWithKeys(prop.items)) visit(prop.items, `${childPath}[]`, prop)
      else for (const branch of prop.anyOf ?? []) if (isObjectWithKeys(branch)) visit(branch, childPath, null)
    }
  }
  visit(schema, '', null)
  return out
}

/**
 * An object schema used at several places (the timeouts block) is documented
 * once, at its last place (`routes[].timeouts`), and linked from the others.
 */
function canonicalPaths (sections: readonly Section[]): Map<string, string> {
  const lastByShape = new Map<string, string>()
  for (const s of sections) lastByShape.set(JSON.stringify(s.schema), s.path)
  const canonical = new Map<string, string>()
  for (const s of sections) canonical.set(s.path, lastByShape.get(JSON.stringify(s.schema)) as string)
  return canonical
}

const anchorOf = (path: string): string =>
  path === '' ? 'top-level' : path.replace(/\[\]/g, '').replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase()

const headingOf = (path: string): string => path === '' ? 'Top level' : `\`${path}\``

const link = (path: string): string => `[\`${path}\`](#${anchorOf(path)})`

/** Text for a Markdown table cell: no newlines, `|` escaped (also inside code spans). */
const cell = (text: string): string => text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|')

const code = (text: string): string => text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``

/** The type of a value in words. `sectionOf` names the section documenting a nested object. */
function typeInWords (s: JsonSchema, sectionOf: (schema: JsonSchema) => string | undefined): string {
  if (s.anyOf !== undefined) return s.anyOf.map(b => 'const' in b ? code(String(b.const)) : typeInWords(b, sectionOf)).join(', or ')
  if (s.enum !== undefined) {
    const values = s.enum.map(v => code(String(v)))
    return values.length === 2 ? `${values[0] as string} or ${values[1] as string}` : `one of ${values.join(', ')}`
  }
  switch (s.type) {
    case 'string': {
      if (s.pattern === DURATION_PATTERN) return 'duration (e.g. 5s)'
      const parts = ['string']
      if (s.minLength !== undefined && s.maxLength !== undefined) parts.push(`${s.minLength}–${s.maxLength} characters`)
      else if (s.minLength === 1) parts[0] = 'non-empty string'
      else if (s.minLength !== undefined) parts.push(`at least ${s.minLength} characters`)
      else if (s.maxLength !== undefined) parts.push(`at most ${s.maxLength} characters`)
      if (s.pattern !== undefined) parts.push(`matching ${code(s.pattern)}`)
      return parts.join(', ')
    }
    case 'integer':
    case 'number': {
      const word = s.type
      if (s.minimum !== undefined && s.maximum !== undefined) return `${word} ${s.minimum}–${s.maximum}`
      if (s.minimum !== undefined) return `${word} ≥ ${s.minimum}`
      if (s.maximum !== undefined) return `${word} ≤ ${s.maximum}`
      return word
    }
    case 'boolean':
      return 'boolean (true/false)'
    case 'array': {
      const item = s.items === undefined
        ? 'values'
        : isObjectWithKeys(s.items) ? 'objects' : typeInWords(s.items, sectionOf).replace(/^string(, )?/, 'strings ').trimEnd()
      const parts = [`list of ${item}`]
      if (s.minItems !== undefined && s.minItems > 0) parts.push(`at least ${s.minItems}`)
      if (s.maxItems !== undefined) parts.push(`at most ${s.maxItems}`)
      if (s.uniqueItems === true) parts.push('no duplicates')
      const section = s.items === undefined ? undefined : sectionOf(s.items)
      if (section !== undefined) parts.push(`see ${link(section)}`)
      return parts.join(', ')
    }
    case 'object': {
      const section = sectionOf(s)
      if (section !== undefined) return `object, see ${link(section)}`
      const patterns = Object.entries(s.patternProperties ?? {})
      if (patterns.length === 1) {
        const [keyPattern, value] = patterns[0] as [string, JsonSchema]
        return `map of name → ${typeInWords(value, sectionOf)} (names matching ${code(keyPattern)})`
      }
      return 'object'
    }
    default:
      return s.type ?? 'any'
  }
}

function renderSection (section: Section, sectionOf: (schema: JsonSchema) => string | undefined, sharedWith: readonly string[]): string {
  const lines: string[] = []
  lines.push(`<a id="${anchorOf(section.path)}"></a>`, '', `## ${headingOf(section.path)}`, '')
  const intro: string[] = []
  if (section.path === '') {
    intro.push(splitDefault(section.schema.description).text, 'These are the keys of the file itself.')
  } else {
    const desc = splitDefault((section.list ?? section.schema).description).text
    if (desc !== '') intro.push(desc)
    if (section.list !== null) {
      intro.push(`A list${section.list.minItems !== undefined && section.list.minItems > 0 ? ` of at least ${section.list.minItems}` : ''}; each entry is a mapping with the keys below.`)
    }
    const parentPath = section.path.slice(0, Math.max(section.path.lastIndexOf('.'), 0))
    intro.push(`Part of ${parentPath === '' ? '[the top level](#top-level)' : link(parentPath)}.`)
  }
  if (sharedWith.length > 0) intro.push(`The same keys are used in ${sharedWith.map(p => `\`${p}\``).join(' and ')}.`)
  intro.push('Unknown keys are rejected.')
  lines.push(intro.join(' '), '')

  lines.push('| key | type | required | default | description |', '| --- | --- | --- | --- | --- |')
  const required = new Set(section.schema.required ?? [])
  for (const [key, prop] of Object.entries(section.schema.properties ?? {})) {
    const { text, dflt } = splitDefault(prop.description)
    const defaultCell = dflt === null ? '—' : formatDefault(dflt)
    lines.push(`| ${code(key)} | ${cell(typeInWords(prop, sectionOf))} | ${required.has(key) ? 'yes' : 'no'} | ${cell(defaultCell)} | ${cell(text === '' ? '—' : text)} |`)
  }
  lines.push('')
  return lines.join('\n')
}

/** `127.0.0.1 (localhost only)` → `` `127.0.0.1` (localhost only) ``. */
function formatDefault (dflt: string): string {
  const list = /^(\[[^\]]*\])(.*)$/s.exec(dflt)
  if (list !== null) return `${code(list[1] as string)}${list[2] as string}`
  // Defaults in words ("half of rate", "the health check path") stay prose.
  if (/^(all|from|half|the)\s/.test(dflt)) return dflt
  const m = /^(\S+)(\s+.*)?$/s.exec(dflt)
  if (m === null) return dflt
  return `${code(m[1] as string)}${m[2] ?? ''}`
}

const INTRO = `# Policy file reference

<!--
  GENERATED FILE: do not edit by hand. It is written by \`npm run schema\`
  (scripts/write-schema.ts) from gateway/policy/schema.ts; change the schema's
  descriptions there and run \`npm run schema\` again.
  test/schema-sync.test.ts fails when this file is out of date.
-->

> Generated by \`npm run schema\` from \`gateway/policy/schema.ts\`. Do not edit
> this file by hand: change the schema and run \`npm run schema\`.

A policy file is YAML (or JSON). The gateway checks it against this schema on
start and on every reload; \`gateway check FILE\` lists every mistake with its
\`file:line:column\` and path. A complete, commented example is
[\`policies/example-payments.yaml\`](../policies/example-payments.yaml).

- **Durations** are strings with a unit: \`250ms\`, \`5s\`, \`1.5m\`, \`1h\`.
- **Unknown keys are rejected** at every level, so a typo is an error, not a
  silently ignored setting.
- **Defaults** apply when a key is left out; \`—\` means no default (the key is
  required, or leaving it out has the meaning given in its description).
- For completion and checking in your editor, point the YAML language server
  at \`policies/schema.json\`, e.g. with a first line
  \`# yaml-language-server: $schema=./schema.json\`.
`

/** docs/policy-reference.md. */
export function renderPolicyReference (): string {
  const schema = plainSchema()
  const sections = collectSections(schema)
  const canonical = canonicalPaths(sections)
  const pathBySchema = new Map<JsonSchema, string>(sections.map(s => [s.schema, canonical.get(s.path) as string]))
  const sectionOf = (s: JsonSchema): string | undefined => pathBySchema.get(s)
  const documented = sections.filter(s => canonical.get(s.path) === s.path)

  const toc = documented.map(s => `- ${s.path === '' ? '[Top level](#top-level)' : link(s.path)}`)
  const parts = [INTRO, '## Contents', '', ...toc, '']
  for (const s of documented) {
    const sharedWith = sections.filter(o => o.path !== s.path && canonical.get(o.path) === s.path).map(o => o.path)
    parts.push(renderSection(s, sectionOf, sharedWith))
  }
  return parts.join('\n').replace(/\n{3,}/g, '\n\n').replace(/\n*$/, '\n')
}

function writeAll (): void {
  for (const [file, text] of [[SCHEMA_JSON_FILE, renderSchemaJson()], [POLICY_REFERENCE_FILE, renderPolicyReference()]] as const) {
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, text)
    process.stdout.write(`wrote ${file.slice(ROOT.length + 1)}\n`)
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) writeAll()
