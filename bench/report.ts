/**
 * Aggregation and console rendering for the proxy benchmark: medians across
 * rounds, the results tables, ratios and loud error flags.
 */
import type { Measurement } from './load.js';

/** Median of a list (NaN when empty). */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Per-target aggregate of one phase. */
export interface Summary {
  readonly target: string;
  readonly rounds: number;
  /** Medians across rounds. */
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** (max − min) / median of req/s across rounds, in percent. */
  readonly reqPerSecSpreadPct: number;
  /** Totals across rounds. */
  readonly errors: number;
  readonly non2xx: number;
  readonly ok: number;
}

/** Aggregates the rounds of one target (medians; error counts summed). */
export function summarize(target: string, runs: readonly Measurement[]): Summary {
  const rps = runs.map((r) => r.reqPerSec);
  const med = median(rps);
  const sum = (f: (m: Measurement) => number): number => runs.reduce((a, m) => a + (f(m) || 0), 0);
  return {
    target,
    rounds: runs.length,
    reqPerSec: med,
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    reqPerSecSpreadPct: runs.length > 1 ? ((Math.max(...rps) - Math.min(...rps)) / med) * 100 : 0,
    errors: sum((m) => m.errors),
    non2xx: sum((m) => m.non2xx),
    ok: sum((m) => m.ok),
  };
}

/** Formats a number with `digits` decimals, or "n/a". */
export function fmt(x: number | undefined, digits = 0): string {
  if (x === undefined || Number.isNaN(x)) return 'n/a';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Formats a signed difference in ms ("+0.213"). */
export function fmtDelta(x: number | undefined, digits = 3): string {
  if (x === undefined || Number.isNaN(x)) return 'n/a';
  return `${x >= 0 ? '+' : ''}${fmt(x, digits)}`;
}

/** Renders rows as an aligned text table (first row is the header). */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const line = (row: readonly string[]): string =>
    row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  const [head, ...body] = rows;
  if (!head) return '';
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(head), rule, ...body.map(line)].join('\n');
}

/** A loud, impossible-to-miss banner. */
export function banner(msg: string): string {
  const bar = '!'.repeat(Math.min(100, Math.max(20, msg.length + 8)));
  return `\n${bar}\n!!! ${msg}\n${bar}`;
}

/** Ratio a/b (NaN when either is missing). */
export function ratio(a: number | undefined, b: number | undefined): number {
  return a === undefined || b === undefined || !b ? Number.NaN : a / b;
}
