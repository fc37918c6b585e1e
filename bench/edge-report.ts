/**
 * The console report of the edge flood bench: the per-phase table (pacer
 * figures, gateway RSS and CPU, machine noise), the attack table (how the
 * gateway closed each kind of attack socket), the canary table, ratios,
 * the targets with PASS/FAIL, and loud banners for an unpinned run, a busy
 * machine or a failed target.
 */
import { ATTACK_KINDS, type Attack } from './edge-attacks.js';
import { CANARY_CONNECTIONS, CANARY_RATE, type CanaryStats } from './edge-canary.js';
import type { EdgeConfig } from './edge-config.js';
import type { GateCounters, RssSummary } from './edge-gauges.js';
import type { Measurement } from './load.js';
import { banner, fmt, median, table } from './report.js';

/** One load phase: the pacer's measurement and what the gateway used meanwhile. */
export interface PhaseResult {
  phase: 'A' | 'B';
  measurement: Measurement;
  rss: RssSummary;
  gatewayCpuPct: number | undefined;
  originCpuPct: number | undefined;
  /** CPU used by processes outside the bench, % of one CPU. */
  noisePct: number | undefined;
  wallMs: number;
}

/** A target of the bench, evaluated. */
export interface TargetResult {
  name: string;
  pass: boolean;
  detail: string;
}

/** Everything the report shows. */
export interface EdgeReport {
  cfg: EdgeConfig;
  pinned: boolean;
  phaseA: PhaseResult;
  phaseB: PhaseResult;
  /** How long RSS was still sampled after the attack stopped. */
  afterMs: number;
  rssAfter: RssSummary;
  /** The orchestrator's CPU during B, % of one core. */
  attackerCpuPct: number;
  attack: Pick<Attack, 'stats' | 'peakOpen'>;
  /** Attack sockets still not closed a while after the attack stopped. */
  leftOpen: number;
  gate: { endOfA: GateCounters | undefined; endOfB: GateCounters | undefined; after: GateCounters | undefined };
  canaryA: CanaryStats;
  canaryB: CanaryStats;
  targets: readonly TargetResult[];
}

/** The report's lines (stdout). */
export function reportLines(r: EdgeReport): string[] {
  const cfg = r.cfg;
  const mA = r.phaseA.measurement;
  const mB = r.phaseB.measurement;
  const rssGrowth = r.phaseB.rss.peak - r.phaseA.rss.peak;
  const out: string[] = [''];
  const lag = (m: Measurement): string => fmt((m.raw as { schedulerLagMs?: { p99?: number } }).schedulerLagMs?.p99, 2);
  out.push(`Edge flood — pacer ${cfg.rate} req/s over ${cfg.rateConnections} keep-alive connections; A ${cfg.baselineS} s baseline, B ${cfg.attackS} s under attack`);
  out.push(
    table([
      ['phase', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'ok', 'errors', 'non2xx', 'RSS start MB', 'RSS peak MB', 'gw CPU %', 'pacer lag p99', 'noise %'],
      ...[r.phaseA, r.phaseB].map((p) => [
        p.phase === 'A' ? 'A baseline' : 'B under attack',
        fmt(p.measurement.reqPerSec),
        fmt(p.measurement.p50Ms, 3),
        fmt(p.measurement.p99Ms, 3),
        fmt((p.measurement.raw as { latencyMs?: { max?: number } }).latencyMs?.max, 2),
        fmt(p.measurement.ok),
        fmt(p.measurement.errors),
        fmt(p.measurement.non2xx),
        fmt(p.rss.start, 1),
        fmt(p.rss.peak, 1),
        fmt(p.gatewayCpuPct, 0),
        fmt(Number(lag(p.measurement)), 2),
        fmt(p.noisePct, 1),
      ]),
    ]),
  );
  out.push(`(gw CPU % = gateway's CPU in % of one core; pacer lag = how late the pacer issued requests (its own CPU); noise = CPU % used by processes outside the bench)`);
  out.push(`after (${r.afterMs / 1000} s with every attack socket closed): RSS ${fmt(r.rssAfter.start, 1)} → ${fmt(r.rssAfter.end, 1)} MB; attacker (this process) used ${fmt(r.attackerCpuPct, 0)} % of a core during B; peak attack sockets open ${r.attack.peakOpen}`);
  out.push('');
  out.push('Attacks (closes initiated by the gateway while the attack ran; every close is followed by a reconnect)');
  const ms = (xs: number[]): string => (xs.length ? `${fmt(median(xs))} / ${fmt(Math.max(...xs))}` : 'n/a');
  out.push(
    table([
      ['attack', 'sockets', 'opened', 'peak open', 'closed by gw', '408', '503', 'other', 'silent close', 'reset', 'held p50/max ms', '408 held p50/max ms', 'open at stop', 'connect errs'],
      ...ATTACK_KINDS.map((k) => {
        const s = r.attack.stats[k];
        return [
          k === 'flood' ? 'idle flood' : k === 'slowBody' ? 'slow body' : 'slowloris',
          fmt(s.target),
          fmt(s.opened),
          fmt(s.peakOpen),
          fmt(s.closedByGateway),
          fmt(s.got408),
          fmt(s.got503),
          fmt(s.gotOtherStatus),
          fmt(s.closedSilently),
          fmt(s.reset),
          ms(s.heldMs),
          ms(s.held408Ms),
          `${fmt(s.openAtStop)}${s.openAtStop ? ` (oldest ${fmt(s.oldestOpenAtStopMs)} ms)` : ''}`,
          fmt(s.connectErrors),
        ];
      }),
    ]),
  );
  out.push(`("silent close" = closed with no answer: the gate making room at maxConnections ${cfg.maxConnections}; "other" statuses: ${JSON.stringify(Object.fromEntries(ATTACK_KINDS.map((k) => [k, r.attack.stats[k].otherStatuses])))})`);
  if (r.leftOpen) out.push(`!!! ${r.leftOpen} attack sockets had not closed 3 s after the attack stopped`);
  const gate = (g: GateCounters | undefined): string =>
    g ? `open ${g.open}, evicted ${g.evicted}, refused ${g.refused}` : 'n/a';
  out.push(`gateway's own counters (GET /status listeners[].connections): end of A: ${gate(r.gate.endOfA)}; end of B: ${gate(r.gate.endOfB)}; after: ${gate(r.gate.after)}`);
  out.push('');
  out.push(`Keep-alive canary (this process, ${CANARY_RATE} req/s over ${CANARY_CONNECTIONS} keep-alive connections; records why requests fail)`);
  out.push(
    table([
      ['phase', 'sent', 'ok', 'errors', 'on reused conn', 'non2xx', 'conns opened', 'conns closed by gw', 'error codes'],
      ...([['A', r.canaryA], ['B', r.canaryB]] as const).map(([p, c]) => [
        p,
        fmt(c.sent),
        fmt(c.ok),
        fmt(c.errors),
        fmt(c.errorsOnReusedSocket),
        fmt(c.non2xx),
        fmt(c.connectionsOpened),
        fmt(c.connectionsClosedByGateway),
        JSON.stringify(c.errorCodes),
      ]),
    ]),
  );
  out.push('');
  out.push('Ratios');
  out.push(`  p99(B) / p99(A)            ${fmt(mB.p99Ms / mA.p99Ms, 2)}x   (${fmt(mB.p99Ms, 3)} / ${fmt(mA.p99Ms, 3)} ms)`);
  out.push(`  peak RSS(B) - peak RSS(A)  ${fmt(rssGrowth, 1)} MB`);
  out.push('');
  out.push('Targets');
  for (const t of r.targets) out.push(`  ${t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.detail}`);
  if (!r.pinned) out.push(banner('UNPINNED RUN — do not trust these figures'));
  for (const n of cfg.notes) out.push(n);
  if ((r.phaseA.noisePct ?? 0) >= 10 || (r.phaseB.noisePct ?? 0) >= 10) {
    out.push(banner(`BUSY MACHINE: other processes used ${fmt(r.phaseA.noisePct, 1)} % (A) / ${fmt(r.phaseB.noisePct, 1)} % (B) of a CPU`));
  }
  const failed = r.targets.filter((t) => !t.pass);
  if (failed.length) out.push(banner(`${failed.length} TARGET(S) FAILED: ${failed.map((t) => t.name).join('; ')}`));
  return out;
}
