/**
 * The shape of one reported drill figure and the helpers that judge it
 * against its target. A figure is a measured value with a unit, a target
 * (text plus the check behind it) and a verdict; figures reported only for
 * information have no target and a `null` verdict. A missing value (null:
 * "never happened") FAILS any target that expects it to happen, so a harness
 * that saw nothing can never report PASS.
 */

export type Unit = 'ms' | 'count' | 'share' | 'yes/no'

export interface Figure {
  /** Stable id for the JSON report, e.g. `t90`. */
  readonly id: string
  /** What was measured, as printed. */
  readonly label: string
  readonly value: number | boolean | null
  readonly unit: Unit
  /** The target as printed (`≤ 1.00 s`); null for an information-only figure. */
  readonly target: string | null
  /** null = reported for information, not judged. */
  readonly pass: boolean | null
  /** How the value came about (counts behind a share, the window used…). */
  readonly detail?: string
}

/** `value` as printed: seconds for ms, percent for shares. */
export function formatValue (value: number | boolean | null, unit: Unit, missing = 'never'): string {
  if (value === null) return missing
  if (typeof value === 'boolean') return value ? 'yes' : 'no'
  switch (unit) {
    case 'ms': return `${(value / 1000).toFixed(2)} s`
    case 'share': return `${(value * 100).toFixed(2)} %`
    default: return String(value)
  }
}

const withDetail = (detail: string | undefined): { detail?: string } => detail === undefined ? {} : { detail }

/** Passes when value ≤ limit (a null value fails). */
export function atMost (id: string, label: string, value: number | null, limit: number, unit: Unit, detail?: string): Figure {
  return { id, label, value, unit, target: `≤ ${formatValue(limit, unit)}`, pass: value !== null && value <= limit, ...withDetail(detail) }
}

/** Passes when the event happened (value not null); the value is its time. */
export function happened (id: string, label: string, value: number | null, detail?: string): Figure {
  return { id, label, value, unit: 'ms', target: 'yes (time reported)', pass: value !== null, ...withDetail(detail) }
}

/** Not judged. */
export function info (id: string, label: string, value: number | boolean | null, unit: Unit, detail?: string): Figure {
  return { id, label, value, unit, target: null, pass: null, ...withDetail(detail) }
}

/** True when no judged figure failed. */
export const allPass = (figures: readonly Figure[]): boolean => figures.every(f => f.pass !== false)
