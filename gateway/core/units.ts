/**
 * Human units used in policy files: durations (`250ms`, `5s`, `1.5m`, `1h`)
 * and shares (`30%`). The schema checks the shape; these turn them into numbers.
 */

export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$'
export const PERCENT_PATTERN = '^[0-9]+(\\.[0-9]+)?%$'

const DURATION_RE = new RegExp(DURATION_PATTERN)
const PERCENT_RE = new RegExp(PERCENT_PATTERN)
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * Longest duration a policy may give (24h). Node timers take at most
 * 2^31 - 1 ms (about 24.8 days) and silently fire after 1 ms above that, so
 * the limit must stay below it; nothing in a policy needs more than a day.
 */
export const MAX_DURATION = '24h'
export const MAX_DURATION_MS = 24 * 3_600_000

/** `"250ms"` → 250, `"1.5s"` → 1500. Throws on anything else. */
export function parseDuration (text: string): number {
  const m = DURATION_RE.exec(text)
  if (m === null) throw new TypeError(`not a duration: ${JSON.stringify(text)} (expected e.g. 250ms, 5s, 1m)`)
  const unit = m[2] as string
  return Math.round(Number.parseFloat(text) * (UNIT_MS[unit] as number))
}

export const SIZE_PATTERN = '^[0-9]+(b|kb|mb)$'
const SIZE_RE = new RegExp(SIZE_PATTERN)
const SIZE_UNIT: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 }

/** Largest size a policy may give: 1 GiB (`1024mb`). */
export const MAX_SIZE = '1024mb'
export const MAX_SIZE_BYTES = 1024 * 1024 * 1024

/** `"64kb"` → 65536. Throws on anything else. */
export function parseSize (text: string): number {
  const m = SIZE_RE.exec(text)
  if (m === null) throw new TypeError(`not a size: ${JSON.stringify(text)} (expected e.g. 512b, 64kb, 1mb)`)
  return Number.parseInt(text, 10) * (SIZE_UNIT[m[1] as string] as number)
}

/** `"30%"` → 0.3. Throws when not a percentage within 0–100. */
export function parsePercent (text: string): number {
  if (!PERCENT_RE.test(text)) throw new TypeError(`not a percentage: ${JSON.stringify(text)} (expected e.g. 30%)`)
  const value = Number.parseFloat(text) / 100
  if (value > 1) throw new RangeError(`percentage above 100%: ${text}`)
  return value
}

/**
 * True when `text` is a duration (or size) above `max`, a duration (or size)
 * itself; false when it is within it or not of the same kind (the pattern
 * check reports that). Values too big for a number count as above.
 */
export function exceedsMax (text: string, max: string): boolean {
  if (DURATION_RE.test(max)) return DURATION_RE.test(text) && !(parseDuration(text) <= parseDuration(max))
  if (SIZE_RE.test(max)) return SIZE_RE.test(text) && !(parseSize(text) <= parseSize(max))
  return false
}
