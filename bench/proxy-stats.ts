/**
 * The proxy bench's arithmetic, from the list of runs to the figures the
 * report prints: per-target medians, per-round req/s and CPU per request,
 * same-round ratios of the pairs the issue sets targets for, added latency
 * over direct. Pure: no I/O.
 */
import type { Measurement } from './load.js';
import type { Noise } from './noise.js';
import { median, ratio, summarize, type Summary } from './report.js';
import type { TargetName } from './proxy-targets.js';

/** One measured run (the results file keeps every one). */
export interface RunRecord {
  phase: 'warmup' | 'throughput' | 'latency';
  round: number;
  target: TargetName;
  measurement: Measurement;
  /** CPU used by other processes during the run (undefined off Linux). */
  noise: Noise | undefined;
  /** True when the run was re-done because the machine was busy (not aggregated). */
  discarded: boolean;
  /** CPU the target's own processes spent per 2xx response (µs), from /proc. */
  cpuUsPerReq?: number | undefined;
}

/** A ratio the issue sets a floor for: req/s of `a` over req/s of `b`. */
export interface RatioTarget {
  readonly key: string;
  readonly a: TargetName;
  readonly b: TargetName;
  readonly min: number;
}

export const RATIO_TARGETS: readonly RatioTarget[] = [
  { key: 'fullOverBare', a: 'gateway-full', b: 'bare', min: 1.4 },
  { key: 'fullOverMinimal', a: 'gateway-full', b: 'minimal-undici', min: 0.95 },
  { key: 'plainOverBare', a: 'gateway-plain', b: 'bare', min: 1.3 },
];

/** One pair's figures. */
export interface PairRatio extends RatioTarget {
  /** a/b within each round (index = round − 1; NaN when either is missing). */
  readonly perRound: number[];
  /** The headline: median of the same-round ratios (drift between rounds cancels). */
  readonly medianOfRounds: number;
  /** median(a) / median(b). */
  readonly ratioOfMedians: number;
  /** CPU µs/request of b over a (medians): > 1 = a spends less CPU per request. */
  readonly cpuRatio: number;
  /** medianOfRounds >= min (null when not measurable). */
  readonly pass: boolean | null;
  /** ratioOfMedians >= min (null when not measurable). */
  readonly passOfMedians: boolean | null;
}

/** Everything the report prints. */
export interface Stats {
  readonly names: TargetName[];
  readonly warm: Map<TargetName, Summary>;
  readonly tput: Map<TargetName, Summary>;
  readonly lat: Map<TargetName, Summary>;
  /** Throughput req/s and CPU µs/request per round (index = round − 1). */
  readonly rpsByRound: Record<string, number[]>;
  readonly cpuByRound: Record<string, number[]>;
  /** Median CPU µs/request over the throughput rounds. */
  readonly cpuMedian: Record<string, number>;
  /** The order the targets ran in, per throughput round. */
  readonly orderByRound: TargetName[][];
  readonly pairs: PairRatio[];
  /** Median over rounds of (target − origin) latency in the same round, ms. */
  readonly addedP50Ms: Record<string, number>;
  readonly addedP99Ms: Record<string, number>;
  /** Median req/s over the origin's. */
  readonly overOrigin: Record<string, number>;
}

const verdict = (x: number, min: number): boolean | null => (Number.isNaN(x) ? null : x >= min);

/** Computes {@link Stats} from the kept runs of `names` over `rounds` rounds. */
export function computeStats(runs: readonly RunRecord[], names: TargetName[], rounds: number): Stats {
  const kept = runs.filter((x) => !x.discarded);
  const byRound = (phase: RunRecord['phase'], name: TargetName): (RunRecord | undefined)[] =>
    Array.from({ length: rounds }, (_, i) => kept.find((x) => x.phase === phase && x.target === name && x.round === i + 1));
  const ms = (phase: RunRecord['phase'], name: TargetName): Measurement[] =>
    kept.filter((x) => x.phase === phase && x.target === name).map((x) => x.measurement);
  const summaries = (phase: RunRecord['phase']): Map<TargetName, Summary> =>
    new Map(names.map((n) => [n, summarize(n, ms(phase, n))]));
  const tput = summaries('throughput');

  const rpsByRound: Record<string, number[]> = {};
  const cpuByRound: Record<string, number[]> = {};
  const cpuMedian: Record<string, number> = {};
  const addedP50Ms: Record<string, number> = {};
  const addedP99Ms: Record<string, number> = {};
  const overOrigin: Record<string, number> = {};
  const originLat = byRound('latency', 'origin');
  for (const n of names) {
    const t = byRound('throughput', n);
    rpsByRound[n] = t.map((x) => x?.measurement.reqPerSec ?? Number.NaN);
    cpuByRound[n] = t.map((x) => x?.cpuUsPerReq ?? Number.NaN);
    cpuMedian[n] = median(cpuByRound[n]);
    overOrigin[n] = ratio(tput.get(n)?.reqPerSec, tput.get('origin')?.reqPerSec);
    const l = byRound('latency', n);
    const added = (k: 'p50Ms' | 'p99Ms'): number =>
      median(l.map((x, i) => (x?.measurement[k] ?? Number.NaN) - (originLat[i]?.measurement[k] ?? Number.NaN)));
    addedP50Ms[n] = added('p50Ms');
    addedP99Ms[n] = added('p99Ms');
  }

  const pairs = RATIO_TARGETS.map((p): PairRatio => {
    const a = rpsByRound[p.a] ?? [];
    const b = rpsByRound[p.b] ?? [];
    const perRound = Array.from({ length: rounds }, (_, i) => ratio(a[i], b[i]));
    const medianOfRounds = median(perRound);
    const ratioOfMedians = ratio(tput.get(p.a)?.reqPerSec, tput.get(p.b)?.reqPerSec);
    return {
      ...p,
      perRound,
      medianOfRounds,
      ratioOfMedians,
      cpuRatio: ratio(cpuMedian[p.b], cpuMedian[p.a]),
      pass: verdict(medianOfRounds, p.min),
      passOfMedians: verdict(ratioOfMedians, p.min),
    };
  });

  const orderByRound = Array.from({ length: rounds }, (_, i) =>
    kept.filter((x) => x.phase === 'throughput' && x.round === i + 1).map((x) => x.target),
  );
  return {
    names,
    warm: summaries('warmup'),
    tput,
    lat: summaries('latency'),
    rpsByRound,
    cpuByRound,
    cpuMedian,
    orderByRound,
    pairs,
    addedP50Ms,
    addedP99Ms,
    overOrigin,
  };
}

/** Highest other-process CPU % over a target's kept runs in a phase (NaN when unknown). */
export function maxNoise(runs: readonly RunRecord[], phase: RunRecord['phase'], name: TargetName): number {
  const xs = runs.flatMap((x) => (x.phase === phase && x.target === name && !x.discarded && x.noise ? [x.noise.foreignPct] : []));
  return xs.length ? Math.max(...xs) : Number.NaN;
}
