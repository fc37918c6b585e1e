/**
 * What the edge flood bench reads off the gateway while it runs: its RSS
 * (VmRSS from /proc, sampled on a timer, so the peak under attack is seen
 * and not only the end state) and the connection gate's own counters from
 * the admin API.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { HOST } from './targets.js';

/** How often RSS is sampled. */
const RSS_SAMPLE_MS = 250;

/** The connection gate's counters of one listener (GET /status → listeners[].connections). */
export interface GateCounters {
  open: number;
  evicted: number;
  refused: number;
}

/** The `public` listener's connection counters, or undefined when the admin API does not answer. */
export async function gateCounters(adminPort: number): Promise<GateCounters | undefined> {
  try {
    const res = await fetch(`http://${HOST}:${adminPort}/status`, { signal: AbortSignal.timeout(3000) });
    const body = (await res.json()) as { listeners?: { name: string; connections?: GateCounters }[] };
    return body.listeners?.find((l) => l.name === 'public')?.connections;
  } catch {
    return undefined;
  }
}

/** A bench phase: baseline, under attack, after the attack. */
export type Phase = 'A' | 'B' | 'after';

/** One RSS sample (recorded in the results file). */
export interface RssSample {
  /** ms since the first sample. */
  t: number;
  phase: Phase;
  rssMb: number;
  /** Attack sockets connected at that moment (B only). */
  attackOpen?: number;
}

/** RSS over one phase, in MB. */
export interface RssSummary {
  start: number;
  peak: number;
  end: number;
  /** Samples taken. */
  n: number;
}

function readRssMb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every 250 ms, each sample tagged with the current {@link phase}. */
export class RssSampler {
  readonly samples: RssSample[] = [];
  /** The phase new samples are tagged with; set by the orchestrator. */
  phase: Phase = 'A';
  #timer: NodeJS.Timeout | undefined;
  #t0 = performance.now();

  /** `attackOpen` is asked for the open attack sockets on every sample taken in phase B. */
  constructor(
    private readonly pid: number,
    private readonly attackOpen: () => number,
  ) {}

  /** Takes a sample now and then every 250 ms. */
  start(): void {
    this.#t0 = performance.now();
    this.sample();
    this.#timer = setInterval(() => this.sample(), RSS_SAMPLE_MS);
  }

  /** Takes one sample (nothing when /proc cannot be read, e.g. the process is gone). */
  sample(): void {
    const rssMb = readRssMb(this.pid);
    if (rssMb === undefined) return;
    const s: RssSample = { t: Math.round(performance.now() - this.#t0), phase: this.phase, rssMb: Math.round(rssMb * 10) / 10 };
    if (this.phase === 'B') s.attackOpen = this.attackOpen();
    this.samples.push(s);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Start, peak and end of one phase's samples (NaN when it has none). */
  of(phase: Phase): RssSummary {
    const xs = this.samples.filter((s) => s.phase === phase).map((s) => s.rssMb);
    return {
      start: xs[0] ?? Number.NaN,
      peak: xs.length ? Math.max(...xs) : Number.NaN,
      end: xs[xs.length - 1] ?? Number.NaN,
      n: xs.length,
    };
  }
}
