/**
 * The frame every bench orchestrator runs in: its env knobs, pinning itself
 * to the load CPU, the results file, and a process lifecycle that always
 * kills the children (on success, errors, signals and exit), so a failed or
 * interrupted run never leaves a server pinned to CPU 0 behind.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChildSet, LOAD_CPU, SERVER_CPU, detectPinning, pinSelf, type Pinning } from './proc.js';
import { banner } from './report.js';

/** The repository root (children run there; results go to bench/results/). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Progress and warnings go to stderr; stdout is kept for the results. */
export const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

/**
 * A numeric env knob: `dflt` when unset or empty; throws (naming the knob)
 * when it is not a number or below `min`.
 */
export function envNum(name: string, dflt: number, min = Number.MIN_VALUE): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min}, got "${raw}"`);
  return n;
}

/**
 * Pins this process to {@link LOAD_CPU} and logs `pinned`, or, when pinning
 * is off, logs a loud banner ending in `unpinned` (figures are then noise).
 */
export function pinOrchestrator(pin: Pinning, pinned: string, unpinned: string): void {
  if (pin.enabled) {
    if (!pinSelf(pin, LOAD_CPU)) log(`warning: could not pin the orchestrator itself to CPU ${LOAD_CPU}`);
    log(pinned);
  } else {
    log(banner(`CPU PINNING DISABLED (${pin.reason}). ${unpinned}`));
  }
}

/**
 * Writes `bench/results/<name>-<startedAt>.json` (gitignored): the common
 * header (times, config, machine, pinning), then `body`; prints its path.
 */
export async function writeResults(
  name: string,
  startedAt: Date,
  config: unknown,
  pin: Pinning,
  body: Record<string, unknown>,
): Promise<void> {
  const resultsDir = path.join(repoRoot, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${name}-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const record = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    config,
    machine: { node: process.version, cpus: os.cpus().map((c) => c.model), platform: `${os.platform()} ${os.release()}` },
    pinning: { ...pin, serverCpu: SERVER_CPU, loadCpu: LOAD_CPU },
    ...body,
  };
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
  process.stdout.write(`\nraw results: ${path.relative(process.cwd(), file)}\n`);
}

/** A bench's body: runs with the children set, a temp log dir and the pinning; resolves with the exit code. */
export type BenchMain = (children: ChildSet, logDir: string, pin: Pinning) => Promise<number>;

/** What a bench with in-process load (sockets, timers) adds to the lifecycle. */
export interface BenchHooks {
  /** Stops the in-process load, synchronously: first thing on shutdown, and again on exit. */
  readonly stop?: () => void;
  /** Awaited once the children are killed, before exiting (e.g. until sockets have closed). */
  readonly afterKill?: () => Promise<unknown>;
  /** What a signal says is being stopped ("children" unless told). */
  readonly stopping?: string;
  /** The whole run is aborted (exit 1) after this long. */
  readonly watchdogMs?: number;
}

/**
 * Runs `main` and exits with its code. Every path out (the end of `main`,
 * a throw, an unhandled rejection, SIGINT/SIGTERM/SIGHUP, the watchdog)
 * goes through one shutdown that kills all children; the log dir is removed
 * after a clean run and kept (and named) otherwise.
 */
export async function runBench(name: string, main: BenchMain, hooks: BenchHooks = {}): Promise<void> {
  const logDir = await mkdtemp(path.join(os.tmpdir(), `${name}-`));
  const pin = detectPinning();
  const children = new ChildSet(pin);
  let exiting: Promise<never> | undefined;

  // Later calls join the first one, so a signal during shutdown cannot exit early.
  const shutdown = (code: number): Promise<never> => {
    exiting ??= (async () => {
      hooks.stop?.();
      await children.killAll();
      await hooks.afterKill?.();
      if (code === 0) await rm(logDir, { recursive: true, force: true });
      else log(`child logs kept in ${logDir}`);
      process.exit(code);
    })();
    return exiting;
  };
  // Errors after shutdown began are expected (children and sockets going away): not logged.
  const fatal = (err: unknown): Promise<never> => {
    if (!exiting) log(`fatal: ${(err as Error)?.stack ?? String(err)}`);
    return shutdown(1);
  };

  process.on('exit', () => {
    hooks.stop?.();
    children.killAllSync();
  });
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.on(signal, () => {
      log(`\n${signal}: stopping ${hooks.stopping ?? 'children'}`);
      void shutdown(code);
    });
  }
  process.on('uncaughtException', (err) => void fatal(err));
  process.on('unhandledRejection', (err) => void fatal(err));
  const watchdogMs = hooks.watchdogMs;
  if (watchdogMs !== undefined) {
    setTimeout(() => void fatal(new Error(`watchdog: still running after ${watchdogMs / 1000} s, aborting`)), watchdogMs).unref();
  }

  main(children, logDir, pin).then(shutdown, fatal);
}
