/**
 * Detects a busy machine: how much CPU processes OTHER than the benchmark
 * used during a run (Linux /proc only). On a 2-core box a concurrent build
 * or test run silently halves a target's throughput; this makes it visible.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Cumulative CPU counters at one instant (jiffies, all CPUs). */
export interface CpuSnapshot {
  /**
   * user + nice + system + irq + softirq. The kernel charges softirq work
   * (loopback TCP, mostly) to the interrupted task's stime but books it under
   * softirq in /proc/stat, so it must be included to match per-process times.
   */
  readonly busy: number;
  /** All columns (busy, idle, iowait, irq, softirq, steal). */
  readonly total: number;
  /** Time the hypervisor gave to other guests. */
  readonly steal: number;
  /** user + system of this process, its reaped children, and the given process groups. */
  readonly ours: number;
}

/** CPU use during an interval, in percent of ONE cpu. */
export interface Noise {
  /** CPU used by processes outside the benchmark. */
  readonly foreignPct: number;
  /** CPU stolen by the hypervisor. */
  readonly stealPct: number;
}

/** Takes a snapshot; `groups` are the process-group ids of live benchmark children. */
export function snapshot(groups: Iterable<number>): CpuSnapshot | undefined {
  try {
    const cols = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const at = (i: number): number => cols[i] ?? 0;
    const wanted = new Set(groups);
    let ours = 0;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      // Fields after "(comm)": state ppid pgrp ... utime(14) stime(15) cutime(16) cstime(17).
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(entry) === process.pid || wanted.has(Number(f[2]))) {
        ours += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      }
    }
    return { busy: at(0) + at(1) + at(2) + at(5) + at(6), total: cols.reduce((a, b) => a + b, 0), steal: at(7), ours };
  } catch {
    return undefined; // not Linux
  }
}

/** CPU used by others between two snapshots, in % of one CPU. */
export function noiseBetween(a: CpuSnapshot | undefined, b: CpuSnapshot | undefined, cpus: number): Noise | undefined {
  if (!a || !b || b.total <= a.total) return undefined;
  const scale = (cpus * 100) / (b.total - a.total);
  const foreign = Math.max(0, b.busy - a.busy - (b.ours - a.ours));
  return {
    foreignPct: Math.round(foreign * scale * 10) / 10,
    stealPct: Math.round((b.steal - a.steal) * scale * 10) / 10,
  };
}
