/**
 * Proxy benchmark orchestrator (`npm run bench`).
 *
 * Measures three targets INTERLEAVED in one run (origin, bare, gateway,
 * origin, bare, gateway, ...) so that machine drift hits all of them alike:
 *   origin   direct to bench/origin.ts
 *   bare     bench/bare-proxy.ts (fastify + @fastify/http-proxy) → origin
 *   gateway  our gateway (dist/gateway/cli/main.js run --policy <tmp>) → origin
 * Servers are pinned to CPU 0 and the load generators to CPU 1 with taskset.
 *
 * Phases: one 2 s warm-up per target (discarded); throughput rounds with
 * autocannon (-c 50 -p 1); fixed-rate latency rounds (500 req/s, 10 conns)
 * reporting the latency each proxy adds over direct. Medians across rounds
 * are printed with ratios; raw figures go to bench/results/proxy-<ts>.json.
 *
 * Env knobs:
 *   BENCH_ROUNDS=3            rounds per phase
 *   BENCH_DURATION=5          seconds per throughput run
 *   BENCH_LATENCY_DURATION    seconds per fixed-rate run (default BENCH_DURATION)
 *   BENCH_WARMUP=2            seconds of discarded warm-up per target
 *   BENCH_CONNECTIONS=50      autocannon connections (throughput)
 *   BENCH_RATE=500            overall req/s of the latency phase
 *   BENCH_RATE_CONNECTIONS=10 connections of the latency phase
 *   BENCH_LATENCY_TOOL=pacer  `pacer` (bench/pacer.ts, open loop, µs resolution)
 *                             or `autocannon` (-R; bursty, whole-ms resolution)
 *   BENCH_NOISE_RETRIES=2     re-runs of a run during which other processes used
 *                             >= 10% of a CPU (0 = keep every run as measured)
 *   BENCH_NO_PIN=1            run unpinned on purpose (figures are then noise)
 *   BENCH_GATEWAY_CMD         replace the gateway with any command run via `sh -c`,
 *                             e.g. another proxy (nginx with `-g 'daemon off;'`).
 *                             Placeholders: {PORT} (where it must listen),
 *                             {ADMIN_PORT}, {ORIGIN_PORT}, {ORIGIN_URL}, {POLICY}.
 *                             Example (a second bare proxy as the "gateway"):
 *                             BENCH_GATEWAY_CMD='node --import tsx bench/bare-proxy.ts {ORIGIN_PORT} {PORT}'
 *   BENCH_GATEWAY_READY_URL   readiness URL for BENCH_GATEWAY_CMD (same placeholders;
 *                             default http://127.0.0.1:{PORT}/), polled until 200.
 *
 * Exit code: 0 when every target started and answered only 2xx; 1 otherwise.
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { envNum, log, pinOrchestrator, repoRoot, runBench, writeResults } from './harness.js';
import { runAutocannon, runPacer, type LoadEnv, type Measurement } from './load.js';
import { LOAD_CPU, SERVER_CPU, isAlive, logTail, waitForHttp200, type Child, type ChildSet, type Pinning } from './proc.js';
import { groupCpuMs, noiseBetween, snapshot, type Noise } from './noise.js';
import { banner, fmt, fmtDelta, median, ratio, summarize, table, type Summary } from './report.js';
import { READY_TIMEOUT_MS, gatewayCli, gatewayPorts, policyYaml, startScript, startServer } from './targets.js';

/** A run during which other processes used this much CPU (% of one CPU) is flagged. */
const NOISY_PCT = 10;
const cpus = os.availableParallelism();

/** Benchmark settings (from env). */
interface Config {
  rounds: number;
  duration: number;
  latencyDuration: number;
  warmup: number;
  connections: number;
  rate: number;
  rateConnections: number;
  latencyTool: 'pacer' | 'autocannon';
  noiseRetries: number;
}

/** A server under test. */
interface Target {
  readonly name: 'origin' | 'bare' | 'gateway';
  readonly label: string;
  readonly url: string;
  readonly command: string;
  readonly child: Child;
}

function readConfig(): Config {
  const duration = envNum('BENCH_DURATION', 5);
  const tool = process.env.BENCH_LATENCY_TOOL ?? 'pacer';
  if (tool !== 'pacer' && tool !== 'autocannon') throw new Error(`BENCH_LATENCY_TOOL must be pacer|autocannon`);
  return {
    rounds: Math.round(envNum('BENCH_ROUNDS', 3)),
    duration,
    latencyDuration: envNum('BENCH_LATENCY_DURATION', duration),
    warmup: envNum('BENCH_WARMUP', 2),
    connections: Math.round(envNum('BENCH_CONNECTIONS', 50)),
    rate: Math.round(envNum('BENCH_RATE', 500)),
    rateConnections: Math.round(envNum('BENCH_RATE_CONNECTIONS', 10)),
    latencyTool: tool,
    noiseRetries: Math.round(envNum('BENCH_NOISE_RETRIES', 2, 0)),
  };
}

/** Starts the gateway (or the BENCH_GATEWAY_CMD override) in front of the origin. */
async function startGateway(children: ChildSet, logDir: string, originPort: number): Promise<Target> {
  const { port, adminPort } = await gatewayPorts();
  const policy = path.join(logDir, 'policy.yaml');
  await writeFile(policy, policyYaml({ version: 'bench', port, adminPort, originPort }));
  const vars: Record<string, string> = {
    PORT: String(port),
    ADMIN_PORT: String(adminPort),
    ORIGIN_PORT: String(originPort),
    ORIGIN_URL: `http://127.0.0.1:${originPort}`,
    POLICY: policy,
  };
  const fill = (s: string): string => s.replace(/\{(\w+)\}/g, (m, k: string) => vars[k] ?? m);
  const override = process.env.BENCH_GATEWAY_CMD;
  let argv: string[];
  let readyUrl: string;
  if (override) {
    argv = ['sh', '-c', fill(override)];
    readyUrl = fill(process.env.BENCH_GATEWAY_READY_URL ?? 'http://127.0.0.1:{PORT}/');
  } else {
    argv = [process.execPath, gatewayCli(), 'run', '--policy', policy];
    readyUrl = `http://127.0.0.1:${adminPort}/healthz`;
  }
  const [child] = await startServer(children, logDir, 'gateway', argv, (c) => waitForHttp200(c, readyUrl, READY_TIMEOUT_MS));
  return {
    name: 'gateway',
    label: override ? 'gateway*' : 'gateway',
    url: `http://127.0.0.1:${port}/`,
    command: argv.join(' '),
    child,
  };
}

/** Checks that a target proxies for real: 200 with the origin's exact body. */
async function sanityCheck(t: Target, originBody: string): Promise<void> {
  let res: Response;
  let body: string;
  try {
    res = await fetch(t.url, { signal: AbortSignal.timeout(5000) });
    body = await res.text();
  } catch (err) {
    throw new Error(`${t.name}: GET ${t.url} failed: ${(err as Error).message}`);
  }
  if (res.status !== 200 || body !== originBody) {
    throw new Error(`${t.name}: GET ${t.url} → ${res.status}, body ${JSON.stringify(body.slice(0, 200))} (expected 200 + origin body)`);
  }
}

/** Everything recorded for the results file. */
interface RunRecord {
  phase: 'warmup' | 'throughput' | 'latency';
  round: number;
  target: string;
  measurement: Measurement;
  /** CPU used by other processes during the run (undefined off Linux). */
  noise: Noise | undefined;
  /** True when the run was re-done because the machine was busy (not aggregated). */
  discarded: boolean;
  /** CPU the target's own processes spent per 2xx response (µs), from /proc. */
  cpuUsPerReq?: number | undefined;
}

async function main(children: ChildSet, logDir: string, pin: Pinning): Promise<number> {
  const cfg = readConfig();
  const startedAt = new Date();
  const failures: string[] = [];

  pinOrchestrator(
    pin,
    `pinning: servers → CPU ${SERVER_CPU}, load generator → CPU ${LOAD_CPU} (${pin.taskset})`,
    'Running unpinned: load generator and servers share CPUs; FIGURES ARE NOT TRUSTWORTHY.',
  );

  // 1. Servers.
  const [originChild, originPort] = await startScript(children, logDir, 'origin', ['bench/origin.ts', '0']);
  const originUrl = `http://127.0.0.1:${originPort}/`;
  const targets: Target[] = [
    { name: 'origin', label: 'origin', url: originUrl, command: 'bench/origin.ts', child: originChild },
  ];
  try {
    const [child, port] = await startScript(children, logDir, 'bare', ['bench/bare-proxy.ts', String(originPort), '0']);
    targets.push({ name: 'bare', label: 'bare', url: `http://127.0.0.1:${port}/`, command: 'bench/bare-proxy.ts', child });
  } catch (err) {
    failures.push(`bare proxy failed to start: ${(err as Error).message}`);
  }
  try {
    targets.push(await startGateway(children, logDir, originPort));
  } catch (err) {
    failures.push(`gateway failed to start: ${(err as Error).message}`);
  }

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
  if (process.env.BENCH_GATEWAY_CMD) log(`note: "gateway*" is BENCH_GATEWAY_CMD, not our gateway`);
  log(`targets: ${targets.map((t) => `${t.label}=${t.url}`).join('  ')}`);

  // 3. Load runs, interleaved.
  const env: LoadEnv = { children, repoRoot, logDir };
  const runs: RunRecord[] = [];
  const dead = new Set<string>();
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
        `[${phase} ${round}/${phase === 'warmup' ? 1 : cfg.rounds}] ${t.label.padEnd(8)} ${fmt(m.reqPerSec)} req/s` +
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
  // Odd rounds run origin, bare, gateway; even rounds the reverse (ABBA), so a
  // machine that drifts during a round favours neither proxy.
  const order = (r: number): Target[] => (r % 2 === 1 ? live() : [...live()].reverse());
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

  // 4. Aggregate.
  const of = (phase: RunRecord['phase'], name: string): Measurement[] =>
    runs.filter((x) => x.phase === phase && x.target === name && !x.discarded).map((x) => x.measurement);
  const tput = new Map<string, Summary>(targets.map((t) => [t.name, summarize(t.name, of('throughput', t.name))]));
  const lat = new Map<string, Summary>(targets.map((t) => [t.name, summarize(t.name, of('latency', t.name))]));
  const warm = new Map<string, Summary>(targets.map((t) => [t.name, summarize(t.name, of('warmup', t.name))]));
  /** Median over rounds of (proxy − origin) in the same round (paired). */
  const added = (name: string, key: 'p50Ms' | 'p99Ms'): number => {
    const o = of('latency', 'origin');
    return median(of('latency', name).map((m, i) => m[key] - (o[i]?.[key] ?? Number.NaN)));
  };
  const rps = (name: string): number | undefined => tput.get(name)?.reqPerSec;
  /** Highest other-process CPU % over a target's runs in a phase. */
  const maxNoise = (phase: RunRecord['phase'], name: string): number => {
    const xs = runs.flatMap((x) => (x.phase === phase && x.target === name && !x.discarded && x.noise ? [x.noise.foreignPct] : []));
    return xs.length ? Math.max(...xs) : Number.NaN;
  };
  /** Same-round ratios (robust to drift between rounds). */
  const perRound = (a: string, b: string): number[] => {
    const bs = of('throughput', b);
    return of('throughput', a).map((m, i) => ratio(m.reqPerSec, bs[i]?.reqPerSec));
  };
  const gatewayOverBarePerRound = perRound('gateway', 'bare');
  const cpuOf = (name: string): number[] =>
    runs.flatMap((x) => (x.phase === 'throughput' && x.target === name && !x.discarded && x.cpuUsPerReq !== undefined ? [x.cpuUsPerReq] : []));
  const cpuPerReq = { bare: median(cpuOf('bare')), gateway: median(cpuOf('gateway')) };
  const ratios = {
    gatewayOverBare: ratio(rps('gateway'), rps('bare')),
    gatewayOverBarePerRound,
    /** The headline: each round compares the two proxies under the same machine conditions. */
    gatewayOverBareMedianOfRounds: median(gatewayOverBarePerRound),
    /** CPU per request, bare / gateway (medians): > 1 means the gateway spends less CPU per request. */
    cpuEfficiencyGatewayOverBare: ratio(cpuPerReq.bare, cpuPerReq.gateway),
    cpuUsPerReq: cpuPerReq,
    bareOverOrigin: ratio(rps('bare'), rps('origin')),
    gatewayOverOrigin: ratio(rps('gateway'), rps('origin')),
    addedP50Ms: { bare: added('bare', 'p50Ms'), gateway: added('gateway', 'p50Ms') },
    addedP99Ms: { bare: added('bare', 'p99Ms'), gateway: added('gateway', 'p99Ms') },
  };

  // 5. Print.
  const labelOf = (name: string): string => targets.find((t) => t.name === name)?.label ?? name;
  const out: string[] = [];
  out.push('');
  out.push(`Throughput — autocannon -c ${cfg.connections} -p 1, ${cfg.duration} s × ${cfg.rounds} round(s), medians`);
  out.push(
    table([
      ['target', 'req/s', 'spread', 'p50 ms', 'p99 ms', '2xx', 'errors', 'non2xx', 'noise'],
      ...[...tput.values()].map((s) => [
        labelOf(s.target),
        fmt(s.reqPerSec),
        `${fmt(s.reqPerSecSpreadPct, 1)}%`,
        fmt(s.p50Ms, 1),
        fmt(s.p99Ms, 1),
        fmt(s.ok),
        fmt(s.errors),
        fmt(s.non2xx),
        `${fmt(maxNoise('throughput', s.target), 1)}%`,
      ]),
    ]),
  );
  out.push('');
  const tool = cfg.latencyTool === 'pacer' ? 'pacer (open loop)' : 'autocannon -R (whole-ms resolution)';
  out.push(`Latency at ${cfg.rate} req/s — ${tool}, ${cfg.rateConnections} conns, ${cfg.latencyDuration} s × ${cfg.rounds} round(s), medians`);
  out.push(
    table([
      ['target', 'p50 ms', 'p99 ms', 'added p50', 'added p99', 'errors', 'non2xx', 'noise'],
      ...[...lat.values()].map((s) => [
        labelOf(s.target),
        fmt(s.p50Ms, 3),
        fmt(s.p99Ms, 3),
        s.target === 'origin' ? '-' : fmtDelta(added(s.target, 'p50Ms')),
        s.target === 'origin' ? '-' : fmtDelta(added(s.target, 'p99Ms')),
        fmt(s.errors),
        fmt(s.non2xx),
        `${fmt(maxNoise('latency', s.target), 1)}%`,
      ]),
    ]),
  );
  out.push(`(autocannon latencies have 1 ms resolution; noise = max CPU % of one core used by OTHER processes during a run)`);
  out.push('');
  const headline = ratios.gatewayOverBareMedianOfRounds;
  const hit = headline >= 1.3 ? 'OK' : Number.isNaN(headline) ? 'n/a' : 'MISS';
  const times = (x: number): string => (Number.isNaN(x) ? 'n/a' : `${fmt(x, 2)}x`);
  out.push('Ratios (req/s)');
  out.push(`  ${labelOf('gateway')} / bare    ${times(headline)}   median of same-round ratios (target >= 1.30x: ${hit})`);
  const rounds = ratios.gatewayOverBarePerRound.map(times).join(' ');
  out.push(`  ${labelOf('gateway')} / bare    ${times(ratios.gatewayOverBare)}   ratio of medians; per round: ${rounds || 'n/a'}`);
  out.push(`  CPU per request  bare ${fmt(cpuPerReq.bare, 1)} µs, ${labelOf('gateway')} ${fmt(cpuPerReq.gateway, 1)} µs → ${labelOf('gateway')} is ${times(ratios.cpuEfficiencyGatewayOverBare)} as CPU-efficient (steadier than req/s on a shared core)`);
  out.push(`  bare / origin     ${times(ratios.bareOverOrigin)}`);
  out.push(`  ${labelOf('gateway')} / origin  ${times(ratios.gatewayOverOrigin)}`);
  out.push(`Added latency over direct at ${cfg.rate} req/s (median of per-round differences)`);
  const ms = (x: number): string => (Number.isNaN(x) ? 'n/a' : `${fmtDelta(x)} ms`);
  out.push(`  bare     p50 ${ms(ratios.addedP50Ms.bare)}   p99 ${ms(ratios.addedP99Ms.bare)}`);
  out.push(`  ${labelOf('gateway').padEnd(8)} p50 ${ms(ratios.addedP50Ms.gateway)}   p99 ${ms(ratios.addedP99Ms.gateway)}`);
  if (!pin.enabled) out.push(banner('UNPINNED RUN — do not trust these figures'));
  const kept = runs.filter((x) => !x.discarded);
  const noisy = kept.filter((x) => (x.noise?.foreignPct ?? 0) >= NOISY_PCT).length;
  const retried = runs.length - kept.length;
  if (retried) out.push(`(${retried} run(s) re-done because other processes were busy; see "discarded" in the results file)`);
  if (noisy) {
    out.push(banner(`BUSY MACHINE: other processes used >= ${NOISY_PCT}% CPU during ${noisy}/${kept.length} kept runs — re-run on a quiet machine`));
  }
  process.stdout.write(`${out.join('\n')}\n`);

  // Loud flags: errors anywhere (warm-up included) or failed targets.
  const errorFlags: string[] = [];
  for (const [phase, map] of [['warm-up', warm], ['throughput', tput], ['latency', lat]] as const) {
    for (const s of map.values()) {
      if (s.errors || s.non2xx) {
        errorFlags.push(`${labelOf(s.target)} had ${s.errors} errors and ${s.non2xx} non-2xx responses in ${phase}: ITS FIGURES ARE NOT VALID`);
      }
    }
  }
  for (const f of errorFlags) process.stdout.write(`${banner(f)}\n`);
  for (const f of failures) process.stdout.write(`${banner(`FAILED: ${f.split('\n')[0] ?? f}`)}\n`);

  // 6. Results file.
  await writeResults('proxy', startedAt, cfg, pin, {
    gatewayOverride: process.env.BENCH_GATEWAY_CMD ?? null,
    targets: targets.map(({ name, label, url, command }) => ({ name, label, url, command })),
    summary: { warmup: [...warm.values()], throughput: [...tput.values()], latency: [...lat.values()] },
    ratios,
    failures,
    errorFlags,
    runs,
  });

  return failures.length || errorFlags.length ? 1 : 0;
}

// Children are always killed, whichever way the run ends (see runBench).
await runBench('proxy-bench', main);
