/**
 * Proxy benchmark orchestrator (`npm run bench`).
 *
 * Measures five targets INTERLEAVED in one run: every round runs every
 * target once, and the order rotates by one place per round, so machine
 * drift hits all of them alike (proxy-targets.ts starts them):
 *   origin          direct to bench/origin.ts
 *   bare            bench/bare-proxy.ts (fastify + @fastify/http-proxy) → origin
 *   minimal-undici  bench/minimal-undici.ts (node:http + one undici Pool) → origin
 *   gateway-plain   our gateway, one catch-all route → origin
 *   gateway-full    our gateway, a payment route with breaker, shift to a
 *                   backup origin, outlier ejection and retry → origin
 * Servers are pinned to CPU 0 and the load generators to CPU 1 with taskset.
 *
 * Phases: one warm-up per target (discarded); throughput rounds with
 * autocannon (-c 50 -p 1); fixed-rate latency rounds (500 req/s, 10 conns)
 * reporting the latency each proxy adds over direct; paired windows (two
 * targets at the same time, proxy-paired.ts) as a drift-free second reading
 * of the ratios. Prints per-round req/s
 * and CPU per request, the same-round ratios gateway-full/bare,
 * gateway-full/minimal-undici and gateway-plain/bare against their targets
 * (PASS/MISS), and checks afterwards that gateway-full kept all traffic on
 * its primary. Raw figures go to bench/results/proxy-<ts>.json.
 *
 * Env knobs (bench/README.md): BENCH_ROUNDS, BENCH_DURATION,
 * BENCH_LATENCY_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS, BENCH_RATE,
 * BENCH_RATE_CONNECTIONS, BENCH_LATENCY_TOOL, BENCH_NOISE_RETRIES,
 * BENCH_NO_PIN, BENCH_GATEWAY_CMD, BENCH_GATEWAY_READY_URL.
 *
 * Exit code: 0 when every target started and answered only 2xx; 1 otherwise
 * (a MISSed ratio target does not change it).
 */
import os from 'node:os';
import { log, pinOrchestrator, repoRoot, runBench, writeResults } from './harness.js';
import { runAutocannon, runPacer, type LoadEnv, type Measurement } from './load.js';
import { LOAD_CPU, SERVER_CPU, isAlive, logTail, type ChildSet, type Pinning } from './proc.js';
import { groupCpuMs, noiseBetween, snapshot } from './noise.js';
import { banner, fmt } from './report.js';
import { readConfig } from './proxy-config.js';
import { NOISY_PCT, renderReport } from './proxy-report.js';
import { computeStats, type RunRecord } from './proxy-stats.js';
import { TARGET_NAMES, sanityCheck, startTargets, type Target, type TargetName } from './proxy-targets.js';
import { checkPaymentRoute } from './route-check.js';
import { renderPaired, runPaired, type PairedResult } from './proxy-paired.js';

const cpus = os.availableParallelism();

/** `xs` rotated left by `k` places. */
const rotate = <T>(xs: readonly T[], k: number): T[] => (xs.length ? [...xs.slice(k % xs.length), ...xs.slice(0, k % xs.length)] : []);

async function main(children: ChildSet, logDir: string, pin: Pinning): Promise<number> {
  const cfg = readConfig();
  const startedAt = new Date();

  pinOrchestrator(
    pin,
    `pinning: servers → CPU ${SERVER_CPU}, load generator → CPU ${LOAD_CPU} (${pin.taskset})`,
    'Running unpinned: load generator and servers share CPUs; FIGURES ARE NOT TRUSTWORTHY.',
  );

  // 1. Servers.
  const { origin: originChild, targets, failures } = await startTargets(children, logDir);
  const originUrl = targets[0]?.url as string;

  // 2. Sanity: every target must return the origin's body.
  const originBody = await (await fetch(originUrl)).text();
  for (const t of [...targets]) {
    try {
      await sanityCheck(t, originBody);
    } catch (err) {
      failures.push(`${(err as Error).message}${logTail(t.child)}`);
      targets.splice(targets.indexOf(t), 1);
      children.kill(t.child); // keep CPU 0 free of a broken target
    }
  }
  for (const f of failures) {
    const [first, ...rest] = f.split('\n');
    log(`${banner(first ?? f)}\n${rest.join('\n')}`);
  }
  if (!targets.some((t) => t.name === 'origin')) throw new Error('origin failed its sanity check; nothing to measure');
  if (process.env.BENCH_GATEWAY_CMD) log(`note: "gateway-*" targets are BENCH_GATEWAY_CMD, not our gateway`);
  log(`targets: ${targets.map((t) => `${t.label}=${t.url}`).join('  ')}`);

  // 3. Load runs, interleaved.
  const env: LoadEnv = { children, repoRoot, logDir };
  const runs: RunRecord[] = [];
  const dead = new Set<TargetName>();
  const live = (): Target[] => targets.filter((t) => !dead.has(t.name));
  /** Runs one measurement; re-runs it (up to BENCH_NOISE_RETRIES) if other processes were busy. */
  const runOne = async (phase: RunRecord['phase'], round: number, t: Target, fn: () => Promise<Measurement>) => {
    for (let attempt = 0; ; attempt++) {
      const before = snapshot(children.groups());
      const m = await fn();
      const after = snapshot(children.groups());
      const noise = noiseBetween(before, after, cpus);
      const cpuMs = t.child.proc.pid === undefined ? undefined : groupCpuMs(before, after, t.child.proc.pid);
      const cpuUsPerReq = cpuMs === undefined || m.ok === 0 ? undefined : (cpuMs * 1000) / m.ok;
      const failed = m.errors > 0 || m.non2xx > 0 || !isAlive(t.child) || !isAlive(originChild);
      const noisy = (noise?.foreignPct ?? 0) >= NOISY_PCT;
      const retry = phase !== 'warmup' && noisy && !failed && attempt < cfg.noiseRetries;
      runs.push({ phase, round, target: t.name, measurement: m, noise, discarded: retry, cpuUsPerReq });
      const bad = m.errors || m.non2xx ? `  !!! errors=${m.errors} non2xx=${m.non2xx}` : '';
      const busy = noisy ? `  !!! other processes used ${noise?.foreignPct}% CPU${retry ? ' (discarded, retrying)' : ''}` : '';
      log(
        `[${phase} ${round}/${phase === 'warmup' ? 1 : cfg.rounds}] ${t.label.padEnd(15)} ${fmt(m.reqPerSec)} req/s` +
          `  p50 ${fmt(m.p50Ms, 3)} ms  p99 ${fmt(m.p99Ms, 3)} ms  cpu ${fmt(cpuUsPerReq, 1)} µs/req  noise ${fmt(noise?.foreignPct, 1)}%${bad}${busy}`,
      );
      if (!isAlive(originChild)) throw new Error(`origin died during ${phase}${logTail(originChild)}`);
      if (!isAlive(t.child)) {
        dead.add(t.name);
        failures.push(`${t.name} died during ${phase} round ${round}${logTail(t.child)}`);
        log(banner(`${t.label} DIED during ${phase} round ${round}; dropped from further runs`));
      }
      if (!retry) return;
    }
  };
  const throughputArgs = (secs: number): string[] => ['-c', String(cfg.connections), '-d', String(secs)];

  for (const t of live()) {
    await runOne('warmup', 1, t, () => runAutocannon(env, t.url, throughputArgs(cfg.warmup)));
  }
  // Round r starts r − 1 places further down the list, so over as many rounds
  // as there are targets each one runs once in every position.
  const order = (r: number): Target[] => rotate(live(), r - 1);
  for (let r = 1; r <= cfg.rounds; r++) {
    for (const t of order(r)) await runOne('throughput', r, t, () => runAutocannon(env, t.url, throughputArgs(cfg.duration)));
  }
  for (let r = 1; r <= cfg.rounds; r++) {
    for (const t of order(r)) {
      await runOne('latency', r, t, () =>
        cfg.latencyTool === 'pacer'
          ? runPacer(env, t.url, cfg.rate, cfg.latencyDuration, cfg.rateConnections)
          : runAutocannon(env, t.url, ['-c', String(cfg.rateConnections), '-R', String(cfg.rate), '-d', String(cfg.latencyDuration)]),
      );
    }
  }

  // Paired windows: two targets at once, so the machine's drift hits both.
  let paired: PairedResult[] = [];
  if (cfg.pairedWindows > 0 && !process.env.BENCH_GATEWAY_CMD) {
    paired = await runPaired(env, live(), { windows: cfg.pairedWindows, seconds: cfg.duration, connections: cfg.connections }, log);
  }

  // 4. Where the full route's traffic went, then the figures.
  const full = targets.find((t) => t.name === 'gateway-full');
  const routeCheck = full?.adminUrl && !dead.has('gateway-full') ? await checkPaymentRoute(full.adminUrl) : undefined;
  const names = TARGET_NAMES.filter((n) => targets.some((t) => t.name === n));
  const stats = computeStats(runs, names, cfg.rounds);
  const labelOf = (name: TargetName): string => targets.find((t) => t.name === name)?.label ?? name;

  // 5. Print.
  const lim = process.env.BENCH_LIMITS;
  if (lim !== undefined && lim !== '' && lim !== '0') log('gateway-plain and gateway-full have overload protection configured but not limiting (BENCH_LIMITS=1: overload gate, admission gate, per-client rate limit, tenant bulkheads)');
  const al = process.env.BENCH_ACCESS_LOG;
  if (al !== undefined && al !== '' && al !== '0') log(`gateway-plain and gateway-full write an access log to a file (BENCH_ACCESS_LOG=${al}: sample ${al === '1' ? '100%' : al} of the successes)`);
  const out = [...renderReport({ cfg, stats, runs, labelOf, routeCheck, pinned: pin.enabled }), ...renderPaired(paired, labelOf, cfg.duration)];
  process.stdout.write(`${out.join('\n')}\n`);

  // Loud flags: errors anywhere (warm-up included) or failed targets.
  const errorFlags: string[] = [];
  for (const [phase, map] of [['warm-up', stats.warm], ['throughput', stats.tput], ['latency', stats.lat]] as const) {
    for (const s of map.values()) {
      if (s.errors || s.non2xx) {
        errorFlags.push(`${labelOf(s.target as TargetName)} had ${s.errors} errors and ${s.non2xx} non-2xx responses in ${phase}: ITS FIGURES ARE NOT VALID`);
      }
    }
  }
  for (const r of paired) {
    if (r.bad > 0) errorFlags.push(`${labelOf(r.b)} / ${labelOf(r.a)} paired windows had ${r.bad} errors or non-2xx responses: THEIR FIGURES ARE NOT VALID`);
  }
  for (const f of errorFlags) process.stdout.write(`${banner(f)}\n`);
  for (const f of failures) process.stdout.write(`${banner(`FAILED: ${f.split('\n')[0] ?? f}`)}\n`);

  // 6. Results file.
  await writeResults('proxy', startedAt, cfg, pin, {
    gatewayOverride: process.env.BENCH_GATEWAY_CMD ?? null,
    targets: targets.map(({ name, label, url, command }) => ({ name, label, url, command })),
    summary: { warmup: [...stats.warm.values()], throughput: [...stats.tput.values()], latency: [...stats.lat.values()] },
    perRound: { order: stats.orderByRound, reqPerSec: stats.rpsByRound, cpuUsPerReq: stats.cpuByRound },
    cpuUsPerReq: stats.cpuMedian,
    ratios: stats.pairs,
    addedP50Ms: stats.addedP50Ms,
    addedP99Ms: stats.addedP99Ms,
    overOrigin: stats.overOrigin,
    routeCheck: routeCheck ?? null,
    paired,
    failures,
    errorFlags,
    runs,
  });

  return failures.length || errorFlags.length ? 1 : 0;
}

// Children are always killed, whichever way the run ends (see runBench).
await runBench('proxy-bench', main);
