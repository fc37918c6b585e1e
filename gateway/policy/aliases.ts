/**
 * YAML anchors and aliases, checked before the document is turned into data,
 * so an alias bomb ("billion laughs"), a cycle or a dangling alias is
 * reported at the alias that causes it instead of as an exception from the
 * yaml library.
 *
 * The expansion bound is the yaml library's own (`maxAliasCount` of
 * `toJS`), computed the same way and in the same (document) order:
 * each use of an anchor costs its use count times the largest expansion
 * nested inside it. The library still enforces it as a backstop.
 */
import { isAlias, isCollection, isPair, type Document } from 'yaml'

/** Most expansions one anchor may cost (the yaml library's default limit). */
export const MAX_ALIAS_EXPANSION = 100

export interface AliasProblem {
  /** Offset in the text of the alias at fault. */
  readonly offset: number
  readonly message: string
}

/** The first alias problem in document order, or null. */
export function checkAliases (doc: Document): AliasProblem | null {
  const latest = new Map<string, object>() // anchor name → node, latest seen so far
  const target = new Map<object, object>() // alias → the node it stands for
  const uses = new Map<object, number>() // anchored node → 1 + uses so far
  const cost = new Map<object, number>() // anchored node → expansion of one use
  const open = new Set<object>() // nodes being walked (ancestors)

  const costOf = (node: unknown): number => {
    if (isAlias(node)) {
      const t = target.get(node)
      return t === undefined ? 0 : (uses.get(t) ?? 0) * (cost.get(t) ?? 0)
    }
    if (isPair(node)) return Math.max(costOf(node.key), costOf(node.value))
    if (isCollection(node)) return node.items.reduce<number>((max, item) => Math.max(max, costOf(item)), 0)
    return 1
  }

  const walk = (node: unknown): AliasProblem | null => {
    if (node === null || typeof node !== 'object') return null
    if (isAlias(node)) {
      const offset = node.range?.[0] ?? 0
      const name = node.source
      const t = latest.get(name)
      if (t === undefined) return { offset, message: `alias *${name} has no anchor &${name} before it; define the anchor first` }
      if (open.has(t)) return { offset, message: `alias *${name} is inside the node anchored as &${name}, which would make it contain itself; remove the alias` }
      target.set(node, t)
      const n = (uses.get(t) ?? 1) + 1
      uses.set(t, n)
      if ((cost.get(t) ?? 0) === 0) cost.set(t, costOf(t)) // as the library does: recomputed while 0
      const total = n * (cost.get(t) as number)
      if (total > MAX_ALIAS_EXPANSION) {
        return { offset, message: `aliases expand too much: *${name} would cost ${total} expansions, more than the limit of ${MAX_ALIAS_EXPANSION} (an "alias bomb"); write the values out or use fewer, flatter aliases` }
      }
      return null
    }
    if (isPair(node)) return walk(node.key) ?? walk(node.value)
    const anchor = (node as { anchor?: unknown }).anchor
    if (typeof anchor === 'string' && anchor !== '') {
      latest.set(anchor, node)
      uses.set(node, 1)
    }
    if (!isCollection(node)) return null
    open.add(node)
    try {
      for (const item of node.items) {
        const problem = walk(item)
        if (problem !== null) return problem
      }
      return null
    } finally {
      open.delete(node)
    }
  }
  return walk(doc.contents)
}
