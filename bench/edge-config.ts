/**
 * Settings of the edge flood bench: the env knobs, the listener limits the
 * gateway runs with, and the scaling that fits the attacks into this
 * process's fd limit (every attack socket is an fd here, and the gateway,
 * which inherits the limit, needs one per connection too).
 */
import { readFileSync } from 'node:fs';
import { envNum } from './harness.js';
import { fmt } from './report.js';

/** The listener's `timeouts.requestHeaders` (ms). */
const REQUEST_HEADERS_MS = 2000;
/** The listener's `timeouts.requestBody` (ms). */
const REQUEST_BODY_MS = 5000;
/** fds kept free in this process for the pacer, children's pipes, files. */
const FD_MARGIN = 300;

/** What one run does (recorded as `config` in the results file). */
export interface EdgeConfig {
  baselineS: number;
  attackS: number;
  rate: number;
  rateConnections: number;
  slowloris: number;
  flood: number;
  slowBody: number;
  maxConnections: number;
  /** New attack connections per second, over all three attacks. */
  connectRate: number;
  requestHeadersMs: number;
  requestBodyMs: number;
  /** Soft RLIMIT_NOFILE (null when unknown, Infinity when unlimited). */
  fdSoftLimit: number | null;
  /** Printed before the run and under the results: scaling and sizing notes. */
  notes: string[];
}

/** Soft RLIMIT_NOFILE of this process (children inherit it), from /proc. */
function fdSoftLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return null;
    return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    return null;
  }
}

/**
 * Reads the EDGE_* knobs (see edge-flood.ts). When `ulimit -n` is too low
 * for the attacks, scales every attack and maxConnections down together,
 * with a note, rather than failing on EMFILE half-way through.
 */
export function readConfig(): EdgeConfig {
  const cfg: EdgeConfig = {
    baselineS: envNum('EDGE_BASELINE_S', 8, 1),
    attackS: envNum('EDGE_ATTACK_S', 15, 1),
    rate: Math.round(envNum('EDGE_RATE', 300, 1)),
    rateConnections: Math.round(envNum('EDGE_RATE_CONNECTIONS', 10, 1)),
    slowloris: Math.round(envNum('EDGE_SLOWLORIS', 500, 0)),
    flood: Math.round(envNum('EDGE_FLOOD', 3500, 0)),
    slowBody: Math.round(envNum('EDGE_SLOWBODY', 200, 0)),
    maxConnections: Math.round(envNum('EDGE_MAX_CONNECTIONS', 3000, 1)),
    connectRate: envNum('EDGE_CONNECT_RATE', 3000, 10),
    requestHeadersMs: REQUEST_HEADERS_MS,
    requestBodyMs: REQUEST_BODY_MS,
    fdSoftLimit: fdSoftLimit(),
    notes: [],
  };
  const attackSockets = cfg.slowloris + cfg.flood + cfg.slowBody;
  if (attackSockets > 5000) cfg.notes.push(`note: ${attackSockets} attack sockets requested (more than the ~5000 this bench is meant for)`);
  const limit = cfg.fdSoftLimit;
  if (limit !== null && Number.isFinite(limit) && attackSockets + FD_MARGIN > limit) {
    // Scale every attack (and the cap, so the flood still exceeds it) to fit.
    const f = Math.max(0, limit - FD_MARGIN) / attackSockets;
    const before = `${cfg.slowloris}/${cfg.flood}/${cfg.slowBody}, maxConnections ${cfg.maxConnections}`;
    cfg.slowloris = Math.floor(cfg.slowloris * f);
    cfg.flood = Math.floor(cfg.flood * f);
    cfg.slowBody = Math.floor(cfg.slowBody * f);
    cfg.maxConnections = Math.max(1, Math.floor(cfg.maxConnections * f));
    cfg.notes.push(
      `note: ulimit -n is ${limit}, below the ${attackSockets + FD_MARGIN} fds needed; attacks scaled by ${fmt(f, 2)}: ` +
        `slowloris/flood/slow-body ${before} → ${cfg.slowloris}/${cfg.flood}/${cfg.slowBody}, maxConnections ${cfg.maxConnections}` +
        ` (raise it with \`ulimit -n ${attackSockets + FD_MARGIN}\` for the full run)`,
    );
  }
  if (cfg.slowloris + cfg.flood + cfg.slowBody <= cfg.maxConnections) {
    cfg.notes.push(`note: the attacks (${cfg.slowloris + cfg.flood + cfg.slowBody} sockets) do not exceed maxConnections (${cfg.maxConnections}); the gate will not need to make room`);
  }
  return cfg;
}

/** The listener lines of the gateway policy: the short edge limits under test. */
export function listenerLimits(cfg: EdgeConfig): string[] {
  return [
    `timeouts: { requestHeaders: ${cfg.requestHeadersMs}ms, requestBody: ${cfg.requestBodyMs}ms }`,
    `limits: { maxConnections: ${cfg.maxConnections} }`,
  ];
}
