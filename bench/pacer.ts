/**
 * Open-loop fixed-rate latency probe (used for the "added latency" phase).
 *
 * Why not `autocannon -R`: autocannon's rate limit is a per-second budget per
 * connection — each second every connection fires its quota back-to-back and
 * then idles, so "500 req/s" is really bursts at concurrency 10 — and its
 * latency histogram has whole-millisecond resolution, so a proxy adding
 * 0.2 ms shows up as +0 or +1 ms. This probe sends requests evenly spaced
 * (1 ms timer ticks with catch-up), over at most N keep-alive connections,
 * and times each one with sub-microsecond resolution from the moment it is
 * issued (time queued for a free connection counts as latency).
 *
 * Usage: `node --import tsx bench/pacer.ts <url> [rate=500] [seconds=5] [connections=10]`
 * Prints one JSON object (see `PacerResult` in load.ts) on stdout.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const [url, rateArg = '500', secondsArg = '5', connArg = '10'] = process.argv.slice(2);
if (!url) {
  process.stderr.write('usage: pacer.ts <url> [rate] [seconds] [connections]\n');
  process.exit(2);
}
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const connections = Number(connArg);
const total = Math.max(1, Math.round(rate * seconds));
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });

const latencies = new Float64Array(total);
const lags = new Float64Array(total);
const statusCounts: Record<string, number> = {};
let sent = 0;
let finished = 0;
let ok = 0;
let non2xx = 0;
let errors = 0;
let completed = 0;

/** Issues one GET; calls `done(ms, status)` or `done(NaN, error)`. */
function request(done: (ms: number, outcome: number | Error) => void): void {
  const t0 = performance.now();
  const req = http.get(url as string, { agent }, (res) => {
    res.resume();
    res.once('end', () => done(performance.now() - t0, res.statusCode ?? 0));
    res.once('error', (err) => done(Number.NaN, err));
  });
  req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  req.once('error', (err) => done(Number.NaN, err));
}

/** Opens every connection once so TCP setup is not in the measurement. */
async function warmConnections(): Promise<void> {
  await Promise.all(
    Array.from({ length: connections }, () => new Promise<void>((resolve) => request(() => resolve()))),
  );
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx] ?? Number.NaN;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function report(elapsedMs: number): void {
  const lat = latencies.slice(0, completed).sort();
  const lag = lags.slice(0, sent).sort();
  const mean = lat.reduce((a, b) => a + b, 0) / (lat.length || 1);
  const result = {
    tool: 'pacer',
    url,
    rate,
    seconds,
    connections,
    sent,
    completed,
    ok,
    non2xx,
    errors,
    statusCounts,
    achievedRate: round3(sent / (elapsedMs / 1000)),
    latencyMs: {
      mean: round3(mean),
      p50: round3(percentile(lat, 0.5)),
      p90: round3(percentile(lat, 0.9)),
      p99: round3(percentile(lat, 0.99)),
      max: round3(percentile(lat, 1)),
    },
    schedulerLagMs: { p50: round3(percentile(lag, 0.5)), p99: round3(percentile(lag, 0.99)), max: round3(percentile(lag, 1)) },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await warmConnections();
const start = performance.now();
const interval = 1000 / rate;
let sendWindowMs = seconds * 1000;

await new Promise<void>((resolve) => {
  const onDone = (ms: number, outcome: number | Error): void => {
    finished++;
    if (outcome instanceof Error) {
      errors++;
    } else {
      statusCounts[outcome] = (statusCounts[outcome] ?? 0) + 1;
      if (outcome >= 200 && outcome < 300) {
        ok++;
        latencies[completed++] = ms;
      } else {
        non2xx++;
      }
    }
    if (finished === total) resolve();
  };
  const timer = setInterval(() => {
    const now = performance.now();
    const due = Math.min(total, Math.floor((now - start) / interval) + 1);
    while (sent < due) {
      lags[sent] = now - (start + sent * interval);
      sent++;
      request(onDone);
    }
    if (sent >= total) {
      clearInterval(timer);
      sendWindowMs = now - start + interval;
    }
  }, 1);
});

report(sendWindowMs);
agent.destroy();
