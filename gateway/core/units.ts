/**
 * Human units used in policy files: durations (`250ms`, `5s`, `1.5m`, `1h`)
 * and shares (`30%`). The schema checks the shape; these turn them into numbers.
 */

export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$'
export const PERCENT_PATTERN = '^[0-9]+(\\.[0-9]+)?%$'

const DURATION_RE = new RegExp(DURATION_PATTERN)
const PERCENT_RE = new RegExp(PERCENT_PATTERN)
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

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
