/**
 * Request path normalization before route matching (Envoy's normalize_path,
 * merge_slashes and path_with_escaped_slashes_action in one pass), so that a
 * path routes and forwards as what every upstream will take it to mean:
 *
 * - dot-segments are removed (RFC 3986 §5.2.4), including ones spelt with
 *   `%2e`; a path that climbs above the root is refused, and so is a dot
 *   segment with a `;` parameter (`/..;/`, which Java servers read as `..`);
 * - repeated slashes are merged, kept or refused (listener choice);
 * - `%2F`, `%5C` and a raw `\` are refused, kept or decoded to `/`;
 * - malformed %-escapes and `#` are refused; everything else is forwarded
 *   exactly as sent (other escapes are not decoded, the query is untouched).
 *
 * The common path (no `%`, `\`, `#`, `//` or `/.`) returns the input string
 * itself, so it costs one scan and no allocation.
 */
import type { PathsConfig } from '../policy/snapshot.js'

export interface PathError { readonly error: string }

const SLASH = 47
const DOT = 46
const PERCENT = 37
const BACKSLASH = 92
const HASH = 35

/** `target` is origin-form (`/path?query`); returns the normalized target or why it is refused. */
export function normalizeTarget (target: string, opts: PathsConfig): string | PathError {
  let end = target.indexOf('?')
  if (end === -1) end = target.length
  let clean = true
  let prev = 0
  for (let i = 0; i < end; i++) {
    const c = target.charCodeAt(i)
    if (c === PERCENT || c === BACKSLASH || c === HASH || (prev === SLASH && (c === SLASH || c === DOT))) {
      clean = false
      break
    }
    prev = c
  }
  if (clean) return target
  const path = normalizePath(target.slice(0, end), opts)
  if (typeof path !== 'string') return path
  return end === target.length ? path : path + target.slice(end)
}

function normalizePath (path: string, opts: PathsConfig): string | PathError {
  if (path.includes('#')) return { error: 'the request target holds a "#" fragment, which is never sent in a request' }
  const separated = separators(path, opts.escapedSlashes)
  if (typeof separated !== 'string') return separated
  const segments = separated.slice(1).split('/')
  const out: string[] = []
  let trailing = false
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as string
    const last = i === segments.length - 1
    trailing = false
    if (seg === '' && !last) {
      if (opts.slashes === 'reject') return { error: 'the path holds an empty segment ("//"); this listener refuses them' }
      if (opts.slashes === 'merge') continue
      out.push(seg)
      continue
    }
    const dots = dotSegment(seg)
    if (dots === 'param') return { error: 'the path holds a dot-segment with a ";" parameter (like "/..;/"), which servers read differently' }
    if (dots === 1) {
      trailing = true
      continue
    }
    if (dots === 2) {
      if (out.length === 0) return { error: 'the path climbs above the root with "/../"' }
      out.pop()
      trailing = true
      continue
    }
    out.push(seg)
  }
  const joined = '/' + out.join('/')
  return trailing && out.length > 0 ? joined + '/' : joined
}

/**
 * Encoded slashes and backslashes, and a validity check of every %-escape.
 * Returns the path with `\` / `%2F` / `%5C` decoded to `/` (decode) or as
 * it was (keep), or the reason to refuse it.
 */
function separators (path: string, action: PathsConfig['escapedSlashes']): string | PathError {
  let out = ''
  let from = 0
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i)
    let sep = false
    let len = 1
    if (c === PERCENT) {
      if (!isHex(path.charCodeAt(i + 1)) || !isHex(path.charCodeAt(i + 2))) return { error: 'the path holds a malformed %-escape (a "%" must be followed by two hex digits)' }
      const code = path.slice(i + 1, i + 3).toLowerCase()
      sep = code === '2f' || code === '5c'
      len = 3
    } else if (c === BACKSLASH) {
      sep = true
    }
    if (sep) {
      if (action === 'reject') return { error: 'the path holds an encoded slash or a backslash (%2F, %5C, \\); this listener refuses them' }
      if (action === 'decode') {
        out += path.slice(from, i) + '/'
        from = i + len
      }
    }
    i += len - 1
  }
  return from === 0 ? path : out + path.slice(from)
}

/** 1 for ".", 2 for "..", 'param' for a dot-segment with ";…", 0 otherwise ("%2e" counts as "."). */
function dotSegment (seg: string): 0 | 1 | 2 | 'param' {
  if (seg.length === 0 || (seg.charCodeAt(0) !== DOT && seg.charCodeAt(0) !== PERCENT)) return 0
  let dots = 0
  let i = 0
  while (i < seg.length) {
    if (seg.charCodeAt(i) === DOT) {
      dots++
      i++
    } else if (seg.charCodeAt(i) === PERCENT && seg.slice(i + 1, i + 3).toLowerCase() === '2e') {
      dots++
      i += 3
    } else break
    if (dots > 2) return 0
  }
  if (dots === 0) return 0
  if (i === seg.length) return dots as 1 | 2
  return seg.charCodeAt(i) === 59 /* ; */ ? 'param' : 0
}

function isHex (c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
}
