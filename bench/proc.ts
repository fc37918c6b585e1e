/**
 * Child-process plumbing for the benchmarks: CPU pinning with
 * `taskset`, spawning tracked children in their own process groups,
 * readiness waits, and guaranteed cleanup.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/** CPU the servers (origin and proxy under test) run on. */
export const SERVER_CPU = 0;
/** CPU the load generator (and this orchestrator) run on. */
export const LOAD_CPU = 1;

/** Whether children can be pinned, and how. */
export interface Pinning {
  /** True when `taskset` works for both CPUs. */
  readonly enabled: boolean;
  /** Path of the working taskset binary (empty when disabled). */
  readonly taskset: string;
  /** Why pinning is off, when it is. */
  readonly reason?: string;
}

/**
 * Finds a working `taskset` that can pin to both {@link SERVER_CPU} and
 * {@link LOAD_CPU}. Env `BENCH_NO_PIN=1` disables pinning on purpose.
 */
export function detectPinning(): Pinning {
  if (process.env.BENCH_NO_PIN === '1') {
    return { enabled: false, taskset: '', reason: 'BENCH_NO_PIN=1' };
  }
  const failures: string[] = [];
  for (const candidate of ['/usr/bin/taskset', 'taskset']) {
    const bad = [SERVER_CPU, LOAD_CPU]
      .map((cpu) => ({ cpu, r: spawnSync(candidate, ['-c', String(cpu), 'true'], { encoding: 'utf8' }) }))
      .find(({ r }) => r.error !== undefined || r.status !== 0);
    if (!bad) return { enabled: true, taskset: candidate };
    failures.push(`${candidate} -c ${bad.cpu}: ${bad.r.error?.message ?? bad.r.stderr.trim()}`);
  }
  return { enabled: false, taskset: '', reason: failures.join('; ') };
}

/** Pins this process (all threads) to `cpu`; returns false if that failed. */
export function pinSelf(pin: Pinning, cpu: number): boolean {
  if (!pin.enabled) return false;
  const r = spawnSync(pin.taskset, ['-a', '-p', '-c', String(cpu), String(process.pid)]);
  return r.status === 0;
}

/** Options for {@link ChildSet.spawn}. */
export interface SpawnOptions {
  /** CPU to pin to (ignored when pinning is disabled). */
  readonly cpu: number;
  /** Where stderr (and stdout unless `pipeStdout`) is written. */
  readonly logFile?: string;
  /** Keep stdout as a pipe (to read `READY <port>` or JSON results). */
  readonly pipeStdout?: boolean;
  /** Working directory. */
  readonly cwd?: string;
}

/** A spawned child plus what is needed to report on it. */
export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly logFile?: string;
  /** Resolves with the exit code (or signal name) once the child exits. */
  readonly exited: Promise<number | string>;
}

/**
 * Tracks every child the benchmark starts so that all of them can be killed
 * on exit, errors and signals. Children run detached in their own process
 * group, so a shell wrapper and everything it starts is killed too.
 */
export class ChildSet {
  private readonly children = new Set<Child>();
  private readonly spawnedGroups = new Set<number>();

  constructor(private readonly pin: Pinning) {}

  /** Spawns `argv`, pinned to `opts.cpu` when pinning is enabled. */
  spawn(name: string, argv: readonly string[], opts: SpawnOptions): Child {
    const [cmd, ...args] = this.pin.enabled ? [this.pin.taskset, '-c', String(opts.cpu), ...argv] : argv;
    if (cmd === undefined) throw new Error(`${name}: empty command`);
    const logFd = opts.logFile === undefined ? undefined : openSync(opts.logFile, 'a');
    const out = opts.pipeStdout ? 'pipe' : (logFd ?? 'ignore');
    const proc = spawn(cmd, args, {
      cwd: opts.cwd,
      detached: true,
      stdio: ['ignore', out, logFd ?? 'inherit'],
      env: process.env,
    });
    if (logFd !== undefined) closeSync(logFd);
    const exited = new Promise<number | string>((resolve) => {
      proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
      proc.once('error', (err) => resolve(`spawn error: ${err.message}`));
    });
    if (proc.pid !== undefined) this.spawnedGroups.add(proc.pid);
    const child: Child = { name, proc, logFile: opts.logFile, exited };
    this.children.add(child);
    void exited.then(() => this.children.delete(child));
    return child;
  }

  /** Process-group ids of every child ever spawned (each child leads its own group). */
  groups(): ReadonlySet<number> {
    return this.spawnedGroups;
  }

  /** SIGKILLs one child's process group. */
  kill(child: Child): void {
    signalGroup(child, 'SIGKILL');
  }

  /** SIGTERMs every live child's process group, then SIGKILLs stragglers. */
  async killAll(graceMs = 2000): Promise<void> {
    const live = [...this.children];
    for (const c of live) signalGroup(c, 'SIGTERM');
    const timeout = new Promise<void>((r) => setTimeout(r, graceMs).unref());
    await Promise.race([Promise.all(live.map((c) => c.exited)), timeout]);
    this.killAllSync();
  }

  /** Last-resort synchronous SIGKILL of every live child (for `process.on('exit')`). */
  killAllSync(): void {
    for (const c of this.children) signalGroup(c, 'SIGKILL');
    this.children.clear();
  }
}

function signalGroup(c: Child, signal: NodeJS.Signals): void {
  const pid = c.proc.pid;
  if (pid === undefined || c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/** Collects a piped stdout fully and resolves with it when the child exits. */
export async function collectStdout(child: Child): Promise<{ stdout: string; code: number | string }> {
  const chunks: Buffer[] = [];
  child.proc.stdout?.on('data', (b: Buffer) => chunks.push(b));
  const code = await child.exited;
  return { stdout: Buffer.concat(chunks).toString('utf8'), code };
}

/**
 * Waits for a `READY <port>` line on the child's piped stdout and resolves
 * with the port. Further stdout goes to the child's log file.
 */
export function waitForReadyLine(child: Child, timeoutMs: number): Promise<number> {
  return waitForPortLine(child, /^READY (\d+)\s*$/m, 'READY', timeoutMs);
}

/**
 * Waits for a line matching `pattern` (a multiline RegExp whose first group
 * is a port) on the child's piped stdout and resolves with that port. The
 * stdout read so far and everything after it go to the child's log file, so
 * the log shows what the child printed before it was ready. `what` names the
 * line in errors ("no READY line within …", "exited (1) before READY").
 */
export function waitForPortLine(child: Child, pattern: RegExp, what: string, timeoutMs: number): Promise<number> {
  const stdout = child.proc.stdout;
  if (!stdout) return Promise.reject(new Error(`${child.name}: stdout is not piped`));
  return new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => fail(`no ${what} line within ${timeoutMs} ms`), timeoutMs);
    const onData = (b: Buffer): void => {
      buf += b.toString('utf8');
      const m = pattern.exec(buf);
      if (!m) return;
      clearTimeout(timer);
      stdout.off('data', onData);
      if (child.logFile) {
        const log = createWriteStream(child.logFile, { flags: 'a' });
        log.write(buf);
        stdout.pipe(log);
      } else stdout.resume();
      resolve(Number(m[1]));
    };
    const fail = (why: string): void => {
      clearTimeout(timer);
      stdout.off('data', onData);
      // Keep draining, or a child that goes on printing blocks on a full pipe.
      stdout.resume();
      reject(new Error(`${child.name}: ${why}\n${buf}${logTail(child)}`));
    };
    stdout.on('data', onData);
    void child.exited.then((code) => fail(`exited (${code}) before ${what}`));
  });
}

/**
 * Polls `url` with GET until it answers 200, the child exits, or
 * `timeoutMs` passes (the last two reject with the child's log tail).
 */
export async function waitForHttp200(child: Child, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  let exitCode: number | string | undefined;
  void child.exited.then((c) => (exitCode = c));
  while (Date.now() < deadline) {
    if (exitCode !== undefined) break;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const why = exitCode !== undefined ? `exited (${exitCode})` : `not ready within ${timeoutMs} ms`;
  throw new Error(`${child.name}: ${why}; last probe of ${url}: ${last}${logTail(child)}`);
}

/** True while the child has neither exited nor been killed by a signal. */
export function isAlive(child: Child): boolean {
  return child.proc.exitCode === null && child.proc.signalCode === null;
}

/** The last `maxChars` of a child's log file, formatted for an error message. */
export function logTail(child: Child, maxChars = 4000): string {
  if (!child.logFile || !existsSync(child.logFile)) return '';
  const text = readFileSync(child.logFile, 'utf8');
  if (text.trim() === '') return `\n--- ${child.name} log (${child.logFile}) is empty ---`;
  const tail = text.length > maxChars ? `...${text.slice(-maxChars)}` : text;
  return `\n--- ${child.name} log (${child.logFile}) ---\n${tail.trimEnd()}\n---`;
}

/** Picks a currently free TCP port on 127.0.0.1 (listen on 0, then close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
