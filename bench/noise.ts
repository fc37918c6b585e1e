/**
 * Detects a busy machine: how much CPU processes OTHER than the benchmark
 * used during a run (Linux /proc only). On a 2-core box a concurrent build
 * or test run silently halves a target's throughput; this makes it visible.
 *
 * Method: per-process CPU times from /proc/<pid>/stat, summed over processes
 * that are neither ours (this process, or in a process group the benchmark
 * spawned) nor kernel threads. Reaped children count through their parent's
 * cutime/cstime, except for pid 1, which adopts everybody's orphans. System
 * totals from /proc/stat are NOT used for this: softirq time (loopback TCP)
 * is booked to whichever task or idle loop it interrupted, which makes
 * "total busy − ours" swing by ±10 % of a CPU with no foreign load at all.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** CPU counters at one instant. */
export interface CpuSnapshot {
  /** Jiffies used so far by each foreign (non-benchmark, non-kernel) process. */
  readonly foreign: ReadonlyMap<number, number>;
  /** All /proc/stat columns summed (elapsed jiffies × CPUs). */
  readonly total: number;
  /** Time the hypervisor gave to other guests. */
  readonly steal: number;
  /** Jiffies used so far by the live processes of each of OUR process groups. */
  readonly ours: ReadonlyMap<number, number>;
}

/** CPU use during an interval, in percent of ONE cpu. */
export interface Noise {
  /** CPU used by processes outside the benchmark. */
  readonly foreignPct: number;
  /** CPU stolen by the hypervisor. */
  readonly stealPct: number;
}

/**
 * Takes a snapshot. `ourGroups` are the process-group ids of every child the
 * benchmark has spawned (including exited ones, whose orphans may linger).
 */
export function snapshot(ourGroups: ReadonlySet<number>): CpuSnapshot | undefined {
  try {
    const cols = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const foreign = new Map<number, number>();
    const ours = new Map<number, number>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      // Fields after "(comm)": state(3) ppid(4) pgrp(5) ... utime(14) stime(15) cutime(16) cstime(17).
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
      const [ppid, pgrp] = [f[1] ?? 0, f[2] ?? 0];
      const own = (f[11] ?? 0) + (f[12] ?? 0);
      if (ourGroups.has(pgrp)) ours.set(pgrp, (ours.get(pgrp) ?? 0) + own);
      if (pid === process.pid || ourGroups.has(pgrp) || pid === 2 || ppid === 2) continue; // ours / kernel threads
      foreign.set(pid, pid === 1 ? own : own + (f[13] ?? 0) + (f[14] ?? 0));
    }
    return { foreign, total: cols.reduce((a, b) => a + b, 0), steal: cols[7] ?? 0, ours };
  } catch {
    return undefined; // not Linux
  }
}

/** CPU used by others between two snapshots, in % of one CPU. */
export function noiseBetween(a: CpuSnapshot | undefined, b: CpuSnapshot | undefined, cpus: number): Noise | undefined {
  if (!a || !b || b.total <= a.total) return undefined;
  let foreign = 0;
  for (const [pid, t] of b.foreign) foreign += Math.max(0, t - (a.foreign.get(pid) ?? 0));
  const scale = (cpus * 100) / (b.total - a.total);
  return {
    foreignPct: Math.round(foreign * scale * 10) / 10,
    stealPct: Math.round((b.steal - a.steal) * scale * 10) / 10,
  };
}

/** Jiffies per second (USER_HZ); 100 on every mainstream Linux build. */
const JIFFY_MS = 10;

/**
 * CPU milliseconds one of our process groups used between two snapshots.
 * CPU per request is a steadier efficiency figure than req/s on a shared
 * core: it does not depend on how the scheduler interleaves origin and proxy.
 */
export function groupCpuMs(a: CpuSnapshot | undefined, b: CpuSnapshot | undefined, pgid: number): number | undefined {
  const x = a?.ours.get(pgid);
  const y = b?.ours.get(pgid);
  return x === undefined || y === undefined ? undefined : (y - x) * JIFFY_MS;
}
