/**
 * Helpers shared by the compile steps. They also run on documents that failed
 * the schema (to report every mistake in one go), so a malformed value falls
 * back to the default: the schema has reported it already.
 */
import { parsePercent, parseSize, MAX_SIZE_BYTES } from '../core/units.js'

export type DurationFn = (text: string | undefined, path: Array<string | number>, fallback: number) => number

export function pct (text: string | undefined, fallback: number): number {
  if (typeof text !== 'string') return fallback
  try { return parsePercent(text) } catch { return fallback }
}

/** Bytes of a size; above MAX_SIZE_BYTES the schema's x-max has reported it, so the fallback. */
export function size (text: string | undefined, fallback: number): number {
  if (typeof text !== 'string') return fallback
  try {
    const bytes = parseSize(text)
    return bytes <= MAX_SIZE_BYTES ? bytes : fallback
  } catch { return fallback }
}
