/**
 * Paired windows of the proxy bench: two targets loaded AT THE SAME TIME,
 * each by its own autocannon (half the connections each) on the load CPU,
 * both on the server CPU with the origin. Whatever the machine does during a
 * window (this one's speed moves ±20 % within seconds) happens to both, so
 * the per-window ratio of their req/s is free of drift; an A/A pair (the same
 * build twice) reads 0.99–1.04 here. Printed beside the interleaved verdicts,
 * not as one: with both proxies competing for the core, their req/s split
 * roughly by their own CPU per request, so the ratio is close to the ratio
 * of the proxies' costs alone, while an interleaved ratio also carries the
 * origin's cost (the same for both), which brings it nearer to 1.
 */
import { runAutocannon, type LoadEnv } from './load.js';
import { fmt, median } from './report.js';
import type { Target, TargetName } from './proxy-targets.js';

/** Which pairs are measured: B's req/s over A's. */
export const PAIRS: ReadonlyArray<readonly [a: TargetName, b: TargetName]> = [
  ['minimal-undici', 'gateway-full'],
  ['minimal-undici', 'gateway-plain'],
  ['gateway-plain', 'gateway-full'],
];

export interface PairedWindow {
  readonly a: number;
  readonly b: number;
  /** b / a */
  readonly ratio: number;
}

export interface PairedResult {
  readonly a: TargetName;
  readonly b: TargetName;
  readonly windows: readonly PairedWindow[];
  readonly medianRatio: number;
  /** Transport errors and non-2xx over both targets and all windows (must be 0). */
  readonly bad: number;
}

/** Runs `windows` paired windows of `seconds` for every pair whose targets are both live. */
export async function runPaired(
  env: LoadEnv,
  targets: readonly Target[],
  opts: { windows: number; seconds: number; connections: number },
  onWindow: (line: string) => void,
): Promise<PairedResult[]> {
  const results: PairedResult[] = [];
  const each = String(Math.max(1, Math.round(opts.connections / 2)));
  for (const [aName, bName] of PAIRS) {
    const a = targets.find((t) => t.name === aName);
    const b = targets.find((t) => t.name === bName);
    if (!a || !b) continue;
    const windows: PairedWindow[] = [];
    let bad = 0;
    for (let w = 1; w <= opts.windows; w++) {
      const args = ['-c', each, '-d', String(opts.seconds)];
      const [ma, mb] = await Promise.all([runAutocannon(env, a.url, args), runAutocannon(env, b.url, args)]);
      bad += ma.errors + ma.non2xx + mb.errors + mb.non2xx;
      const win = { a: ma.reqPerSec, b: mb.reqPerSec, ratio: mb.reqPerSec / ma.reqPerSec };
      windows.push(win);
      onWindow(`[paired ${w}/${opts.windows}] ${a.label} ${fmt(win.a)} req/s | ${b.label} ${fmt(win.b)} req/s | ${fmt(win.ratio, 3)}x`);
    }
    results.push({ a: aName, b: bName, windows, medianRatio: median(windows.map((x) => x.ratio)), bad });
  }
  return results;
}

/** The report lines for the paired windows. */
export function renderPaired(results: readonly PairedResult[], labelOf: (n: TargetName) => string, seconds: number): string[] {
  if (results.length === 0) return [];
  const out = ['', `Paired windows — two targets at the same time, ${seconds} s each (drift-free; not the verdict)`];
  for (const r of results) {
    const per = r.windows.map((w) => fmt(w.ratio, 2)).join(' ');
    const flag = r.bad > 0 ? `  !!! ${r.bad} errors/non-2xx: NOT VALID` : '';
    out.push(`  ${`${labelOf(r.b)} / ${labelOf(r.a)}`.padEnd(32)} median ${fmt(r.medianRatio, 2)}x   per window ${per}${flag}`);
  }
  return out;
}
