/**
 * Edge flood benchmark (`npm run bench:edge`): do the listener's client-side
 * limits keep normal traffic fast while hostile clients hammer the edge?
 *
 * Starts bench/origin.ts and the gateway (dist/, one catch-all route, short
 * edge limits: requestHeaders 2s, requestBody 5s, maxConnections 3000), both
 * pinned to CPU 0; the pacer and this orchestrator (which runs the attacks)
 * are pinned to CPU 1. Then:
 *   A  baseline: the pacer at 300 req/s over 10 keep-alive connections, 8 s.
 *   B  the same pacer load, 15 s, while this process runs
 *        - 500 slowloris sockets: `GET / HTTP/1.1`, `Host`, then one header
 *          line every 500 ms, never finishing the head;
 *        - an idle flood of 3500 sockets that send nothing (more than
 *          maxConnections, so the gate has to close idle ones to make room);
 *        - 200 slow bodies: POST with Content-Length: 1000000, 1 byte/s.
 *      Every attack socket is reopened as soon as the gateway closes it
 *      (new connections are capped at EDGE_CONNECT_RATE per second overall).
 * The gateway's RSS (VmRSS) is sampled every 250 ms during A and B. A small
 * keep-alive canary in this process (60 req/s, 3 connections) records why
 * requests fail (error code, reused connection or not), which the pacer does
 * not, and the gateway's own counters (GET /status: open/evicted/refused)
 * are read at the end of A, the end of B and afterwards.
 *
 * Targets (exit code 1 if one fails): no error and no non-2xx for the normal
 * requests during B; p99(B) <= max(50 ms, 5 x p99(A)); peak RSS(B) - peak
 * RSS(A) <= 150 MB; no slowloris socket held open longer than
 * requestHeaders + 2 s; the gateway still up and answering afterwards.
 * Results go to bench/results/edge-flood-<timestamp>.json (gitignored).
 *
 * This file runs the phases and judges the targets; the attackers are in
 * edge-attacks.ts, the canary in edge-canary.ts, RSS and gate counters in
 * edge-gauges.ts, the knobs in edge-config.ts, the printout in
 * edge-report.ts; starting the servers (targets.ts) and the process
 * lifecycle (harness.ts) are shared with proxy-bench.ts.
 *
 * Env knobs (defaults in brackets): EDGE_BASELINE_S [8], EDGE_ATTACK_S [15],
 * EDGE_RATE [300], EDGE_RATE_CONNECTIONS [10], EDGE_SLOWLORIS [500],
 * EDGE_FLOOD [3500], EDGE_SLOWBODY [200] (0 = off), EDGE_MAX_CONNECTIONS
 * [3000], EDGE_CONNECT_RATE [3000] new attack connections/s, BENCH_NO_PIN=1.
 * Attack sizes are scaled down (with a note) when `ulimit -n` is too low.
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Attack } from './edge-attacks.js';
import { Canary } from './edge-canary.js';
import { listenerLimits, readConfig, type EdgeConfig } from './edge-config.js';
import { RssSampler, gateCounters } from './edge-gauges.js';
import { reportLines, type PhaseResult, type TargetResult } from './edge-report.js';
import { log, pinOrchestrator, repoRoot, runBench, writeResults } from './harness.js';
import { runPacer, type LoadEnv, type Measurement } from './load.js';
import { groupCpuMs, noiseBetween, snapshot } from './noise.js';
import { LOAD_CPU, SERVER_CPU, isAlive, logTail, waitForHttp200, type Child, type ChildSet, type Pinning } from './proc.js';
import { fmt } from './report.js';
import { HOST, READY_TIMEOUT_MS, expectOriginBody, gatewayCli, gatewayPorts, policyYaml, startScript, startServer, waitForListening } from './targets.js';

/** The whole run is aborted (exit 1) after this long. */
const WATCHDOG_MS = 60_000;
/** Slowloris sockets may be held this much longer than requestHeaders. */
const SLOWLORIS_GRACE_MS = 2000;
/** How long RSS is still sampled after the attack stopped. */
const AFTER_MS = 3000;

/**
 * Starts the gateway CLI with the edge limits under test. It must report
 * listening on the policy's port (stdout) and answer the admin /healthz.
 */
async function startGateway(children: ChildSet, logDir: string, cfg: EdgeConfig, originPort: number) {
  const { port, adminPort } = await gatewayPorts();
  const policyText = policyYaml({ version: 'bench-edge', port, adminPort, originPort, listener: listenerLimits(cfg) });
  const policy = path.join(logDir, 'policy.yaml');
  await writeFile(policy, policyText);
  const argv = [process.execPath, gatewayCli(), 'run', '--policy', policy, '--no-watch'];
  const ready = async (child: Child): Promise<void> => {
    await waitForListening(child, port);
    await waitForHttp200(child, `http://${HOST}:${adminPort}/healthz`, READY_TIMEOUT_MS);
  };
  const [child] = await startServer(children, logDir, 'gateway', argv, ready, { pipeStdout: true });
  return { child, port, adminPort, url: `http://${HOST}:${port}/`, command: argv.join(' '), policy: policyText };
}

// Reached by the shutdown hooks, so sockets and timers stop whichever way the run ends.
let attackRef: Attack | undefined;
let samplerRef: RssSampler | undefined;
let canaryRef: Canary | undefined;

async function main(children: ChildSet, logDir: string, pin: Pinning): Promise<number> {
  const cfg = readConfig();
  const startedAt = new Date();
  for (const n of cfg.notes) log(n);
  pinOrchestrator(
    pin,
    `pinning: origin + gateway → CPU ${SERVER_CPU}, pacer + attacks (this process) → CPU ${LOAD_CPU}`,
    'FIGURES ARE NOT TRUSTWORTHY.',
  );

  const [originChild, originPort] = await startScript(children, logDir, 'origin', ['bench/origin.ts', '0']);
  const gw = await startGateway(children, logDir, cfg, originPort);
  const gwPid = gw.child.proc.pid;
  if (gwPid === undefined) throw new Error('gateway: no pid');
  const originBody = await (await fetch(`http://${HOST}:${originPort}/`)).text();
  const sane = await expectOriginBody(gw.url, originBody);
  if (sane) throw new Error(`gateway sanity check: ${sane}${logTail(gw.child)}`);
  log(`gateway ${gw.url} (pid ${gwPid}) → origin :${originPort}; limits: requestHeaders ${cfg.requestHeadersMs} ms, requestBody ${cfg.requestBodyMs} ms, maxConnections ${cfg.maxConnections}`);

  const env: LoadEnv = { children, repoRoot, logDir };
  const attack = new Attack(gw.port, cfg);
  attackRef = attack;
  const sampler = new RssSampler(gwPid, () => attack.openNow);
  samplerRef = sampler;
  const pct = (cpuMs: number | undefined, wallMs: number): number | undefined =>
    cpuMs === undefined ? undefined : Math.round((cpuMs / wallMs) * 1000) / 10;
  const phaseRun = async (phase: 'A' | 'B', fn: () => Promise<Measurement>): Promise<Omit<PhaseResult, 'rss'>> => {
    const before = snapshot(children.groups());
    const t0 = performance.now();
    const measurement = await fn();
    const wallMs = performance.now() - t0;
    const after = snapshot(children.groups());
    return {
      phase,
      measurement,
      gatewayCpuPct: pct(groupCpuMs(before, after, gwPid), wallMs),
      originCpuPct: originChild.proc.pid === undefined ? undefined : pct(groupCpuMs(before, after, originChild.proc.pid), wallMs),
      noisePct: noiseBetween(before, after, os.availableParallelism())?.foreignPct,
      wallMs: Math.round(wallMs),
    };
  };

  const canary = new Canary(gw.url);
  canaryRef = canary;

  // Phase A: baseline.
  sampler.start();
  canary.start();
  log(`[A] baseline: ${cfg.rate} req/s over ${cfg.rateConnections} connections for ${cfg.baselineS} s`);
  const a = await phaseRun('A', () => runPacer(env, gw.url, cfg.rate, cfg.baselineS, cfg.rateConnections));
  sampler.sample();
  const rssA = sampler.of('A');
  const phaseA: PhaseResult = { ...a, rss: rssA };
  const canaryA = canary.take();
  const gateA = await gateCounters(gw.adminPort);
  log(`[A] ${fmt(a.measurement.reqPerSec)} req/s  p50 ${fmt(a.measurement.p50Ms, 3)}  p99 ${fmt(a.measurement.p99Ms, 3)} ms  errors ${a.measurement.errors}  non2xx ${a.measurement.non2xx}  RSS ${fmt(rssA.start, 1)}→${fmt(rssA.peak, 1)} MB`);
  if (!isAlive(gw.child)) throw new Error(`gateway died during phase A${logTail(gw.child)}`);

  // Phase B: the same load under attack.
  sampler.phase = 'B';
  sampler.sample();
  const cpu0 = process.cpuUsage();
  const tB = performance.now();
  attack.start();
  log(`[B] attacks: ${cfg.slowloris} slowloris + ${cfg.flood} idle + ${cfg.slowBody} slow-body sockets (≤ ${cfg.connectRate} new connections/s)`);
  await attack.ramped(3000);
  log(`[B] ramped in ${fmt(performance.now() - tB)} ms (${attack.openNow} attack sockets open); pacer ${cfg.rate} req/s for ${cfg.attackS} s`);
  const b = await phaseRun('B', () => runPacer(env, gw.url, cfg.rate, cfg.attackS, cfg.rateConnections));
  sampler.sample();
  const canaryB = canary.take();
  const gateB = await gateCounters(gw.adminPort);
  attack.stop();
  canary.stop();
  const attackWallMs = performance.now() - tB;
  const attackerCpu = process.cpuUsage(cpu0);
  const attackerCpuPct = Math.round(((attackerCpu.user + attackerCpu.system) / 1000 / attackWallMs) * 1000) / 10;
  const rssB = sampler.of('B');
  const phaseB: PhaseResult = { ...b, rss: rssB };
  const leftOpen = await attack.closed(3000);
  log(`[B] ${fmt(b.measurement.reqPerSec)} req/s  p50 ${fmt(b.measurement.p50Ms, 3)}  p99 ${fmt(b.measurement.p99Ms, 3)} ms  errors ${b.measurement.errors}  non2xx ${b.measurement.non2xx}  RSS ${fmt(rssB.start, 1)}→${fmt(rssB.peak, 1)} MB`);

  // After: the gateway must still be up and answering.
  sampler.phase = 'after';
  await sleep(AFTER_MS);
  sampler.sample();
  const gatewayAlive = isAlive(gw.child);
  const afterCheck = gatewayAlive ? await expectOriginBody(gw.url, originBody) : `gateway exited (${gw.child.proc.exitCode ?? gw.child.proc.signalCode})`;
  sampler.sample();
  sampler.stop();
  const rssAfter = sampler.of('after');
  const gateAfter = await gateCounters(gw.adminPort);

  // ---- evaluate
  const mA = phaseA.measurement;
  const mB = phaseB.measurement;
  const p99Limit = Math.max(50, 5 * mA.p99Ms);
  const rssGrowth = rssB.peak - rssA.peak;
  const sl = attack.stats.slowloris;
  const slowlorisMaxHeld = Math.max(sl.heldMs.length ? Math.max(...sl.heldMs) : 0, sl.oldestOpenAtStopMs);
  const slowlorisLimit = cfg.requestHeadersMs + SLOWLORIS_GRACE_MS;
  const maxOf = (xs: number[]): number => (xs.length ? Math.max(...xs) : Number.NaN);
  const targets: TargetResult[] = [
    {
      name: 'normal requests during B all 2xx',
      pass: mB.errors === 0 && mB.non2xx === 0 && mB.ok > 0,
      detail: `${mB.ok} ok, ${mB.errors} errors, ${mB.non2xx} non-2xx (${JSON.stringify((mB.raw as { statusCounts?: unknown }).statusCounts ?? {})})`,
    },
    {
      name: 'p99(B) <= max(50 ms, 5 x p99(A))',
      pass: mB.p99Ms <= p99Limit,
      detail: `p99(B) ${fmt(mB.p99Ms, 2)} ms vs limit ${fmt(p99Limit, 2)} ms (5 x p99(A) = ${fmt(5 * mA.p99Ms, 2)} ms)`,
    },
    {
      name: 'RSS growth <= 150 MB',
      pass: rssGrowth <= 150,
      detail: `peak RSS(B) ${fmt(rssB.peak, 1)} MB - peak RSS(A) ${fmt(rssA.peak, 1)} MB = ${fmt(rssGrowth, 1)} MB`,
    },
    {
      name: `slowloris held <= requestHeaders + ${SLOWLORIS_GRACE_MS / 1000} s`,
      pass: sl.closedByGateway > 0 && slowlorisMaxHeld <= slowlorisLimit,
      detail: `longest ${fmt(slowlorisMaxHeld)} ms (closed ones max ${fmt(maxOf(sl.heldMs))} ms, oldest still open at stop ${fmt(sl.oldestOpenAtStopMs)} ms) vs ${slowlorisLimit} ms`,
    },
    {
      name: 'gateway up and answering after the flood',
      pass: afterCheck === null,
      detail: afterCheck ?? 'GET / → 200 with the origin body',
    },
  ];
  const failed = targets.filter((t) => !t.pass);

  const lines = reportLines({
    cfg,
    pinned: pin.enabled,
    phaseA,
    phaseB,
    afterMs: AFTER_MS,
    rssAfter,
    attackerCpuPct,
    attack,
    leftOpen,
    gate: { endOfA: gateA, endOfB: gateB, after: gateAfter },
    canaryA,
    canaryB,
    targets,
  });
  process.stdout.write(`${lines.join('\n')}\n`);

  await writeResults('edge-flood', startedAt, cfg, pin, {
    gateway: { command: gw.command, policy: gw.policy },
    phases: { A: phaseA, B: phaseB },
    after: { rss: rssAfter, check: afterCheck ?? 'ok' },
    attackerCpuPct,
    attack: { peakOpen: attack.peakOpen, stats: attack.stats },
    canary: { A: canaryA, B: canaryB },
    gateCounters: { endOfA: gateA ?? null, endOfB: gateB ?? null, after: gateAfter ?? null },
    ratios: { p99BOverA: mB.p99Ms / mA.p99Ms, rssGrowthMb: rssGrowth, p99LimitMs: p99Limit, slowlorisMaxHeldMs: slowlorisMaxHeld },
    targets,
    rssSamples: sampler.samples,
  });
  return failed.length ? 1 : 0;
}

await runBench('edge-flood', main, {
  stop: () => {
    samplerRef?.stop();
    canaryRef?.stop();
    attackRef?.stop();
  },
  afterKill: async () => {
    await attackRef?.closed(1000);
  },
  stopping: 'attacks and children',
  watchdogMs: WATCHDOG_MS,
});
