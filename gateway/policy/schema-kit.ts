/**
 * Building blocks of the policy schema: strict objects (unknown keys
 * rejected), durations, sizes and percentages in human units, names.
 * `x-max` is our own keyword (validate.ts): the largest duration or size.
 */
import { Type, type ObjectOptions, type TProperties } from '@sinclair/typebox'
import { DURATION_PATTERN, PERCENT_PATTERN, SIZE_PATTERN, MAX_DURATION, MAX_SIZE } from '../core/units.js'

export const strict = <T extends TProperties>(props: T, options: ObjectOptions = {}) =>
  Type.Object(props, { additionalProperties: false, ...options })

export const Duration = (description: string, dflt?: string) =>
  Type.String({
    pattern: DURATION_PATTERN,
    'x-max': MAX_DURATION,
    description: `${description} Must be more than 0 and at most ${MAX_DURATION}.${dflt === undefined ? '' : ` @default ${dflt}`}`,
    'x-hint': 'write a duration with a unit, e.g. 250ms, 5s, 1m'
  })

export const Name = (what: string) => Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$',
  description: `Name of the ${what}: letters, digits, _ . - (shown in /status, events and headers).`,
  'x-hint': 'use letters, digits, "_", "." or "-", starting with a letter or digit'
})


export const Percent = (description: string, dflt?: string) =>
  Type.String({
    pattern: PERCENT_PATTERN,
    description: dflt === undefined ? description : `${description} @default ${dflt}`,
    'x-hint': 'write a percentage, e.g. 5%, 25%, 100%'
  })

export const Count = (description: string, minimum: number, maximum: number) =>
  Type.Integer({ minimum, maximum, description })

export const Size = (description: string, dflt?: string) =>
  Type.String({
    pattern: SIZE_PATTERN,
    'x-max': MAX_SIZE,
    description: `${description} At most ${MAX_SIZE}.${dflt === undefined ? '' : ` @default ${dflt}`}`,
    'x-hint': 'write a size with a unit, e.g. 512b, 64kb, 1mb'
  })
