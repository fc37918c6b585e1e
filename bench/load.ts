/**
 * Load-generator runners: autocannon (throughput) and the fixed-rate pacer
 * (added latency), each run as a child process pinned to the load CPU, with
 * their JSON output normalised to a {@link Measurement}.
 */
import path from 'node:path';
import { ChildSet, LOAD_CPU, collectStdout, logTail } from './proc.js';

/** One load run against one target, normalised across tools. */
export interface Measurement {
  readonly tool: 'autocannon' | 'pacer';
  /** Average completed requests per second. */
  readonly reqPerSec: number;
  /** Latency percentiles of 2xx responses, in ms. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Transport errors (incl. timeouts, resets). */
  readonly errors: number;
  /** Responses with a non-2xx status. */
  readonly non2xx: number;
  /** 2xx responses. */
  readonly ok: number;
  /** The tool's full JSON output. */
  readonly raw: unknown;
}

/** Where the runners find their scripts and put their logs. */
export interface LoadEnv {
  readonly children: ChildSet;
  readonly repoRoot: string;
  readonly logDir: string;
}

let runSeq = 0;

async function runJsonTool(env: LoadEnv, name: string, argv: string[]): Promise<Record<string, unknown>> {
  const logFile = path.join(env.logDir, `${name}-${++runSeq}.log`);
  const child = env.children.spawn(name, argv, { cpu: LOAD_CPU, pipeStdout: true, logFile, cwd: env.repoRoot });
  const { stdout, code } = await collectStdout(child);
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    if (code !== 0) throw new Error(`exit ${code}`);
    return JSON.parse(line) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${name} failed (${(err as Error).message}): ${argv.join(' ')}\n${stdout.slice(-2000)}${logTail(child)}`);
  }
}

function num(obj: unknown, ...keys: string[]): number {
  let cur: unknown = obj;
  for (const k of keys) cur = (cur as Record<string, unknown> | undefined)?.[k];
  return typeof cur === 'number' ? cur : Number.NaN;
}

/**
 * Runs `autocannon --json -p 1 <extraArgs> <url>` pinned to the load CPU.
 * @param extraArgs e.g. `['-c', '50', '-d', '5']` or `['-c', '10', '-R', '500', '-d', '5']`.
 */
export async function runAutocannon(env: LoadEnv, url: string, extraArgs: string[]): Promise<Measurement> {
  const script = path.join(env.repoRoot, 'node_modules', 'autocannon', 'autocannon.js');
  const raw = await runJsonTool(env, 'autocannon', [process.execPath, script, '--json', '-p', '1', ...extraArgs, url]);
  return {
    tool: 'autocannon',
    reqPerSec: num(raw, 'requests', 'average'),
    p50Ms: num(raw, 'latency', 'p50'),
    p99Ms: num(raw, 'latency', 'p99'),
    errors: num(raw, 'errors'),
    non2xx: num(raw, 'non2xx'),
    ok: num(raw, '2xx'),
    raw,
  };
}

/** Runs bench/pacer.ts (open-loop fixed rate) pinned to the load CPU. */
export async function runPacer(
  env: LoadEnv,
  url: string,
  rate: number,
  seconds: number,
  connections: number,
): Promise<Measurement> {
  const script = path.join(env.repoRoot, 'bench', 'pacer.ts');
  const argv = [process.execPath, '--import', 'tsx', script, url, String(rate), String(seconds), String(connections)];
  const raw = await runJsonTool(env, 'pacer', argv);
  return {
    tool: 'pacer',
    reqPerSec: num(raw, 'achievedRate'),
    p50Ms: num(raw, 'latencyMs', 'p50'),
    p99Ms: num(raw, 'latencyMs', 'p99'),
    errors: num(raw, 'errors'),
    non2xx: num(raw, 'non2xx'),
    ok: num(raw, 'ok'),
    raw,
  };
}
