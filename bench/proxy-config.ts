/**
 * The proxy bench's settings, from env (see bench/README.md, "Env knobs").
 */
import { envNum } from './harness.js';

/** Benchmark settings. */
export interface Config {
  rounds: number;
  duration: number;
  latencyDuration: number;
  warmup: number;
  connections: number;
  rate: number;
  rateConnections: number;
  latencyTool: 'pacer' | 'autocannon';
  noiseRetries: number;
  pairedWindows: number;
}

/** Reads every BENCH_* knob; throws on a malformed one. */
export function readConfig(): Config {
  const duration = envNum('BENCH_DURATION', 5);
  const tool = process.env.BENCH_LATENCY_TOOL ?? 'pacer';
  if (tool !== 'pacer' && tool !== 'autocannon') throw new Error(`BENCH_LATENCY_TOOL must be pacer|autocannon`);
  return {
    rounds: Math.round(envNum('BENCH_ROUNDS', 5)),
    duration,
    latencyDuration: envNum('BENCH_LATENCY_DURATION', duration),
    warmup: envNum('BENCH_WARMUP', 2),
    connections: Math.round(envNum('BENCH_CONNECTIONS', 50)),
    rate: Math.round(envNum('BENCH_RATE', 500)),
    rateConnections: Math.round(envNum('BENCH_RATE_CONNECTIONS', 10)),
    latencyTool: tool,
    noiseRetries: Math.round(envNum('BENCH_NOISE_RETRIES', 2, 0)),
    pairedWindows: Math.round(envNum('BENCH_PAIRED_WINDOWS', 5, 0)),
  };
}
