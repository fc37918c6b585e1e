/**
 * The proxy bench's printout: medians per target, req/s and CPU per request
 * of every interleaved round, the same-round ratios with their targets
 * (PASS/MISS), added latency, and what the full gateway's route did.
 */
import type { Config } from './proxy-config.js';
import { maxNoise, type RunRecord, type Stats } from './proxy-stats.js';
import type { TargetName } from './proxy-targets.js';
import { banner, fmt, fmtDelta, median, table } from './report.js';
import type { RouteCheck } from './route-check.js';

/** A run during which other processes used this much CPU (% of one CPU) is flagged. */
export const NOISY_PCT = 10;

/** What the report needs besides the figures. */
export interface ReportInput {
  readonly cfg: Config;
  readonly stats: Stats;
  readonly runs: readonly RunRecord[];
  readonly labelOf: (name: TargetName) => string;
  readonly routeCheck: RouteCheck | string | undefined;
  readonly pinned: boolean;
}

const SHORT: Record<TargetName, string> = { origin: 'O', bare: 'B', 'minimal-undici': 'M', 'gateway-plain': 'P', 'gateway-full': 'F' };
const times = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? 'n/a' : `${fmt(x, 2)}x`);
const passMiss = (p: boolean | null): string => (p === null ? 'n/a' : p ? 'PASS' : 'MISS');
const msDelta = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? 'n/a' : `${fmtDelta(x)} ms`);

/** Renders the whole report as lines. */
export function renderReport({ cfg, stats, runs, labelOf, routeCheck, pinned }: ReportInput): string[] {
  const { names, pairs } = stats;
  const out: string[] = [''];
  const pairHead = (p: Stats['pairs'][number]): string => `${labelOf(p.a).replace('gateway-', '')}/${labelOf(p.b).replace('-undici', '')}`;

  out.push(`Throughput — autocannon -c ${cfg.connections} -p 1, ${cfg.duration} s × ${cfg.rounds} round(s), medians`);
  out.push(
    table([
      ['target', 'req/s', '/origin', 'spread', 'p50 ms', 'p99 ms', 'cpu µs/req', '2xx', 'errors', 'non2xx', 'noise'],
      ...names.map((n) => {
        const s = stats.tput.get(n);
        return [
          labelOf(n),
          fmt(s?.reqPerSec),
          n === 'origin' ? '-' : times(stats.overOrigin[n]),
          `${fmt(s?.reqPerSecSpreadPct, 1)}%`,
          fmt(s?.p50Ms, 1),
          fmt(s?.p99Ms, 1),
          fmt(stats.cpuMedian[n], 1),
          fmt(s?.ok),
          fmt(s?.errors),
          fmt(s?.non2xx),
          `${fmt(maxNoise(runs, 'throughput', n), 1)}%`,
        ];
      }),
    ]),
  );

  out.push('');
  out.push(`Per round — req/s (order: ${names.map((n) => `${SHORT[n]}=${labelOf(n)}`).join(' ')}), same-round ratios`);
  const roundRows = Array.from({ length: cfg.rounds }, (_, i) => [
    String(i + 1),
    (stats.orderByRound[i] ?? []).map((n) => SHORT[n]).join(''),
    ...names.map((n) => fmt(stats.rpsByRound[n]?.[i])),
    ...pairs.map((p) => times(p.perRound[i])),
  ]);
  out.push(
    table([
      ['round', 'order', ...names.map(labelOf), ...pairs.map(pairHead)],
      ...roundRows,
      ['median', '', ...names.map((n) => fmt(median(stats.rpsByRound[n] ?? []))), ...pairs.map((p) => times(p.medianOfRounds))],
      ['ratio of medians', '', ...names.map(() => ''), ...pairs.map((p) => times(p.ratioOfMedians))],
    ]),
  );

  out.push('');
  out.push('Per round — CPU µs per 2xx response (the target\'s own processes, from /proc; steadier than req/s on a shared core)');
  out.push(
    table([
      ['round', ...names.map(labelOf)],
      ...Array.from({ length: cfg.rounds }, (_, i) => [String(i + 1), ...names.map((n) => fmt(stats.cpuByRound[n]?.[i], 1))]),
      ['median', ...names.map((n) => fmt(stats.cpuMedian[n], 1))],
    ]),
  );

  out.push('');
  const tool = cfg.latencyTool === 'pacer' ? 'pacer (open loop)' : 'autocannon -R (whole-ms resolution)';
  out.push(`Latency at ${cfg.rate} req/s — ${tool}, ${cfg.rateConnections} conns, ${cfg.latencyDuration} s × ${cfg.rounds} round(s), medians`);
  out.push(
    table([
      ['target', 'p50 ms', 'p99 ms', 'added p50', 'added p99', 'errors', 'non2xx', 'noise'],
      ...names.map((n) => {
        const s = stats.lat.get(n);
        return [
          labelOf(n),
          fmt(s?.p50Ms, 3),
          fmt(s?.p99Ms, 3),
          n === 'origin' ? '-' : fmtDelta(stats.addedP50Ms[n]),
          n === 'origin' ? '-' : fmtDelta(stats.addedP99Ms[n]),
          fmt(s?.errors),
          fmt(s?.non2xx),
          `${fmt(maxNoise(runs, 'latency', n), 1)}%`,
        ];
      }),
    ]),
  );
  out.push('(added = median of per-round differences to direct; noise = max CPU % of one core used by OTHER processes during a run)');

  out.push('');
  const few = cfg.rounds < 3 ? `  — only ${cfg.rounds} round(s): indicative, not a verdict` : '';
  out.push(`Targets (req/s; verdict on the median of same-round ratios)${few}`);
  for (const p of pairs) {
    const name = `${labelOf(p.a)} / ${labelOf(p.b)}`.padEnd(32);
    const disagree = p.passOfMedians !== p.pass ? ` ${passMiss(p.passOfMedians)}` : '';
    out.push(
      `  ${name} >= ${fmt(p.min, 2)}x   ${times(p.medianOfRounds).padStart(6)}  ${passMiss(p.pass)}` +
        `   (ratio of medians ${times(p.ratioOfMedians)}${disagree}; CPU/req ${times(p.cpuRatio)} less)`,
    );
  }
  out.push(`Added latency over direct at ${cfg.rate} req/s`);
  for (const n of names.filter((x) => x !== 'origin')) {
    out.push(`  ${labelOf(n).padEnd(15)} p50 ${msDelta(stats.addedP50Ms[n])}   p99 ${msDelta(stats.addedP99Ms[n])}`);
  }

  out.push(...routeLines(routeCheck));
  if (!pinned) out.push(banner('UNPINNED RUN — do not trust these figures'));
  const kept = runs.filter((x) => !x.discarded);
  const noisy = kept.filter((x) => (x.noise?.foreignPct ?? 0) >= NOISY_PCT).length;
  const retried = runs.length - kept.length;
  if (retried) out.push(`(${retried} run(s) re-done because other processes were busy; see "discarded" in the results file)`);
  if (noisy) {
    out.push(banner(`BUSY MACHINE: other processes used >= ${NOISY_PCT}% CPU during ${noisy}/${kept.length} kept runs — re-run on a quiet machine`));
  }
  return out;
}

/** What the full route did (from the gateway's /status). */
function routeLines(check: RouteCheck | string | undefined): string[] {
  if (check === undefined) return [];
  if (typeof check === 'string') return [`gateway-full route check: unknown (${check})`];
  const breakers = Object.entries(check.breakers).map(([n, s]) => `${n} ${s}`).join(', ') || 'n/a';
  const line =
    `gateway-full route check: primary ${fmt(check.primaryAttempts)} attempts, backup ${fmt(check.backupAttempts)}, ` +
    `failed ${fmt(check.failedAttempts)}, client-aborted ${fmt(check.abortedAttempts)}, retries ${fmt(check.retries)}, shift applied ${fmt(check.shiftApplied, 2)}, ` +
    `breakers ${breakers}, ejected ${check.ejected.join(', ') || 'none'}`;
  if (check.problems.length === 0) return [line, '  (all traffic stayed on the primary: the figures are the cost of the mechanisms, not of a failover)'];
  return [line, banner(`gateway-full's route did more than pass traffic to its primary: ${check.problems.join('; ')} — its figures include that work`)];
}
