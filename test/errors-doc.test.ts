/**
 * docs/errors.md mirrors the ERRORS table (fastify's
 * test/internals/errors.test.js idea): every code on both sides, with the same
 * status, meaning (title) and "how to solve" text. The doc may put words in
 * `code spans` or write <, >, & as entities; those are undone before comparing.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ERRORS, type ErrorSpec } from '../gateway/core/errors.js'

const DOC = fileURLToPath(new URL('../docs/errors.md', import.meta.url))
const HEADER = /^\|\s*code\s*\|\s*HTTP status\s*\|\s*meaning\s*\|\s*how to solve\s*\|$/i

interface DocRow {
  readonly line: number
  readonly code: string
  readonly status: number
  readonly meaning: string
  readonly howToSolve: string
}

/** Cells of one table row, split on unescaped pipes. */
function cells (row: string): string[] {
  const inner = row.trim().replace(/^\|/, '').replace(/\|$/, '')
  return inner.split(/(?<!\\)\|/).map(c => c.trim())
}

/** Markdown cell → plain text: code spans, escaped pipes and entities undone. */
function plain (text: string): string {
  return text
    .replace(/`+ ?([^`]*?) ?`+/g, '$1')
    .replace(/\\\|/g, '|')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim()
}

/** The rows of the table whose header is `code | HTTP status | meaning | how to solve`. */
function parseErrorTable (md: string): DocRow[] {
  const lines = md.split('\n')
  const start = lines.findIndex(l => HEADER.test(l.trim()))
  if (start === -1) throw new Error('docs/errors.md has no "| code | HTTP status | meaning | how to solve |" table')
  const rows: DocRow[] = []
  for (let i = start + 2; i < lines.length; i++) {
    const line = (lines[i] as string).trim()
    if (!line.startsWith('|')) break
    const c = cells(line)
    if (c.length !== 4) throw new Error(`docs/errors.md:${i + 1}: expected 4 cells, found ${c.length}`)
    const [code, status, meaning, howToSolve] = c.map(plain) as [string, string, string, string]
    const m = /^(\d{3})\b/.exec(status)
    rows.push({ line: i + 1, code, status: m === null ? NaN : Number(m[1]), meaning, howToSolve })
  }
  return rows
}

const md = readFileSync(DOC, 'utf8')
const rows = parseErrorTable(md)
const specs: ErrorSpec[] = Object.values(ERRORS)
const docByCode = new Map(rows.map(r => [r.code, r]))
const specByCode = new Map(specs.map(s => [s.code, s]))

t.test('the table parses', async t => {
  t.ok(rows.length > 0, 'the error table has rows')
  t.equal(md.split('\n')[rows[0]!.line - 2]?.trim().startsWith('| ---'), true, 'a separator follows the header')
})

t.test('codes are well formed and unique', async t => {
  for (const [name, spec] of Object.entries(ERRORS)) {
    t.match(spec.code, /^GW_ERR_[A-Z_]+$/, `ERRORS.${name}.code`)
    t.equal(spec.code, `GW_ERR_${name}`, `ERRORS.${name} has the code named after its key`)
    t.ok(Number.isInteger(spec.status) && spec.status >= 400 && spec.status <= 599, `${spec.code} has an error status`)
  }
  t.equal(specByCode.size, specs.length, 'no two ERRORS entries share a code')
  for (const r of rows) t.match(r.code, /^GW_ERR_[A-Z_]+$/, `docs/errors.md:${r.line} code ${r.code}`)
  t.equal(docByCode.size, rows.length, 'no code is listed twice in docs/errors.md')
})

t.test('every code in ERRORS is documented', async t => {
  for (const spec of specs) {
    t.ok(docByCode.has(spec.code), `${spec.code} is missing from docs/errors.md`)
  }
})

t.test('every documented code exists in ERRORS', async t => {
  for (const r of rows) {
    t.ok(specByCode.has(r.code), `docs/errors.md:${r.line} lists ${r.code}, which is not in gateway/core/errors.ts`)
  }
})

t.test('status, meaning and how to solve match ERRORS', async t => {
  for (const r of rows) {
    const spec = specByCode.get(r.code)
    if (spec === undefined) continue
    t.equal(r.status, spec.status, `docs/errors.md:${r.line} ${r.code} status`)
    t.equal(r.meaning, spec.title, `docs/errors.md:${r.line} ${r.code} meaning (= title)`)
    t.equal(r.howToSolve, spec.howToSolve, `docs/errors.md:${r.line} ${r.code} how to solve`)
  }
})

t.test('the doc describes the problem shape from gateway/proxy/problem.ts', async t => {
  for (const word of ['urn:gateway:error:', 'x-gateway-error', 'x-request-id', 'x-gateway-upstream', 'retry-after', 'instance']) {
    t.ok(md.toLowerCase().includes(word.toLowerCase()), `mentions ${word}`)
  }
})
