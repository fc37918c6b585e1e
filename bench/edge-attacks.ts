/**
 * The edge flood bench's attackers, run from the orchestrator's process:
 *   - slowloris: `GET / HTTP/1.1`, `Host`, then one header line every
 *     500 ms, never finishing the head (requestHeaders must cut it off);
 *   - idle flood: sockets that send nothing (more than maxConnections, so
 *     the gate has to close connections to make room);
 *   - slow body: POST with Content-Length: 1000000, 1 byte/s (requestBody
 *     must cut it off).
 * Every socket the gateway closes is reopened at once, and each close is
 * counted by how it ended (408, 503, another status, a silent close, a
 * reset) with how long the socket was held.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { HOST } from './targets.js';

/** The three attacks, in the order they are reported. */
export const ATTACK_KINDS = ['slowloris', 'flood', 'slowBody'] as const;
/** One of the three attacks. */
export type Kind = (typeof ATTACK_KINDS)[number];

/** What happened to one kind of attack socket (only closes the gateway initiated count). */
export interface KindStats {
  target: number;
  opened: number;
  connectErrors: number;
  /** Closed by the gateway (or reset) while the attack was running. */
  closedByGateway: number;
  /** …of which answered with a status before the close. */
  got408: number;
  got503: number;
  gotOtherStatus: number;
  /** …of which closed with no byte sent back (the gate closing an idle connection to make room). */
  closedSilently: number;
  /** …of which ended with ECONNRESET / EPIPE. */
  reset: number;
  otherStatuses: Record<string, number>;
  errorCodes: Record<string, number>;
  /** ms from connect to close, every gateway-initiated close. */
  heldMs: number[];
  /** ms from connect to close, closes that carried a 408. */
  held408Ms: number[];
  /** Still open when the attack stopped, and the oldest of them (ms). */
  openAtStop: number;
  oldestOpenAtStopMs: number;
  /** Most sockets of this kind connected at once. */
  peakOpen: number;
}

/** How many sockets of each attack, and how fast new ones may be opened. */
export interface AttackPlan {
  readonly slowloris: number;
  readonly flood: number;
  readonly slowBody: number;
  /** New connections per second, first opens and reopens of all three attacks together. */
  readonly connectRate: number;
}

interface AttackSocket {
  readonly kind: Kind;
  readonly socket: Socket;
  readonly bucket: number;
  connectedAt: number;
  head: string;
  error: string | undefined;
  lines: number;
}

const SLOWLORIS_HEAD = `GET / HTTP/1.1\r\nHost: x\r\n`;
const SLOWBODY_LENGTH = 1_000_000;
const SLOWBODY_HEAD = `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${SLOWBODY_LENGTH}\r\n\r\n`;
const TICK_MS = 50;

/**
 * Runs the three attacks from this process. New connections (first opens and
 * reopens) go through one queue drained at `connectRate` per second, so the
 * attacker's own CPU stays bounded and its connect storm does not decide
 * the result.
 */
export class Attack {
  readonly stats: Record<Kind, KindStats>;
  readonly #port: number;
  readonly #connectRate: number;
  readonly #live = new Set<AttackSocket>();
  readonly #open: Record<Kind, number> = { slowloris: 0, flood: 0, slowBody: 0 };
  #queue: Kind[] = [];
  #queueHead = 0;
  #seq = 0;
  #tick = 0;
  #credit = 0;
  #lastPump = 0;
  #running = false;
  #pump: NodeJS.Timeout | undefined;
  #drip: NodeJS.Timeout | undefined;
  startedAt = 0;
  stoppedAt = 0;
  /** Largest number of attack connections open at once. */
  peakOpen = 0;

  constructor(port: number, cfg: AttackPlan) {
    this.#port = port;
    this.#connectRate = cfg.connectRate;
    const mk = (target: number): KindStats => ({
      target,
      opened: 0,
      connectErrors: 0,
      closedByGateway: 0,
      got408: 0,
      got503: 0,
      gotOtherStatus: 0,
      closedSilently: 0,
      reset: 0,
      otherStatuses: {},
      errorCodes: {},
      heldMs: [],
      held408Ms: [],
      openAtStop: 0,
      oldestOpenAtStopMs: 0,
      peakOpen: 0,
    });
    this.stats = { slowloris: mk(cfg.slowloris), flood: mk(cfg.flood), slowBody: mk(cfg.slowBody) };
  }

  /** Attack sockets alive now (connecting or connected). */
  get openNow(): number {
    return this.#live.size;
  }
  /** Connected sockets of one attack. */
  openOf(kind: Kind): number {
    return this.#open[kind];
  }
  /** Opens waiting for connect-rate credit. */
  get queued(): number {
    return this.#queue.length - this.#queueHead;
  }

  /** Queues every first open and starts the pump and the drip. */
  start(): void {
    this.#running = true;
    this.startedAt = performance.now();
    this.#lastPump = this.startedAt;
    // Busy (slow-body) first, then slowloris, then the flood. The gate
    // evicts connections that never started a request oldest first, so at
    // the cap the slowloris sockets go before the flood's.
    for (const kind of ['slowBody', 'slowloris', 'flood'] as const) {
      for (let i = 0; i < this.stats[kind].target; i++) this.#queue.push(kind);
    }
    this.#pump = setInterval(() => this.#pumpQueue(), 10);
    this.#drip = setInterval(() => this.#dripTick(), TICK_MS);
  }

  /** Resolves once every first open has been issued, or after `maxMs`. */
  async ramped(maxMs: number): Promise<void> {
    const deadline = performance.now() + maxMs;
    const firsts = (): number => Object.values(this.stats).reduce((a, s) => a + s.opened + s.connectErrors, 0);
    const all = Object.values(this.stats).reduce((a, s) => a + s.target, 0);
    while (performance.now() < deadline && firsts() < all) await sleep(50);
  }

  #pumpQueue(): void {
    const now = performance.now();
    this.#credit = Math.min(this.#connectRate / 10, this.#credit + ((now - this.#lastPump) / 1000) * this.#connectRate);
    this.#lastPump = now;
    while (this.#running && this.#credit >= 1 && this.#queueHead < this.#queue.length) {
      const kind = this.#queue[this.#queueHead++] as Kind;
      this.#credit--;
      this.#openOne(kind);
    }
    if (this.#queueHead > 10_000) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  #openOne(kind: Kind): void {
    const socket = connect({ host: HOST, port: this.#port });
    const a: AttackSocket = { kind, socket, bucket: this.#seq++ % 20, connectedAt: 0, head: '', error: undefined, lines: 0 };
    this.#live.add(a);
    socket.setNoDelay(true);
    socket.on('connect', () => {
      a.connectedAt = performance.now();
      const st = this.stats[kind];
      st.opened++;
      const n = ++this.#open[kind];
      if (n > st.peakOpen) st.peakOpen = n;
      const all = this.#open.slowloris + this.#open.flood + this.#open.slowBody;
      if (all > this.peakOpen) this.peakOpen = all;
      if (kind === 'slowloris') socket.write(SLOWLORIS_HEAD);
      else if (kind === 'slowBody') socket.write(SLOWBODY_HEAD);
    });
    socket.on('data', (d: Buffer) => {
      if (a.head.length < 64) a.head += d.toString('latin1', 0, Math.min(d.length, 64));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      a.error = err.code ?? err.message;
    });
    socket.on('close', () => this.#closed(a));
  }

  #closed(a: AttackSocket): void {
    this.#live.delete(a);
    if (a.connectedAt > 0) this.#open[a.kind]--;
    if (!this.#running) return; // we closed it
    const st = this.stats[a.kind];
    if (a.connectedAt === 0) {
      st.connectErrors++;
      const code = a.error ?? 'closed before connect';
      st.errorCodes[code] = (st.errorCodes[code] ?? 0) + 1;
      // Back off a little on connect errors (EADDRNOTAVAIL, EMFILE, …).
      setTimeout(() => this.#requeue(a.kind), 100).unref();
      return;
    }
    const held = performance.now() - a.connectedAt;
    st.closedByGateway++;
    st.heldMs.push(held);
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(a.head);
    if (m) {
      const status = m[1] as string;
      if (status === '408') {
        st.got408++;
        st.held408Ms.push(held);
      } else if (status === '503') st.got503++;
      else {
        st.gotOtherStatus++;
        st.otherStatuses[status] = (st.otherStatuses[status] ?? 0) + 1;
      }
    } else if (a.error === 'ECONNRESET' || a.error === 'EPIPE') {
      st.reset++;
    } else {
      st.closedSilently++;
    }
    if (a.error !== undefined) st.errorCodes[a.error] = (st.errorCodes[a.error] ?? 0) + 1;
    this.#requeue(a.kind);
  }

  #requeue(kind: Kind): void {
    if (this.#running) this.#queue.push(kind);
  }

  /** Every 50 ms: slowloris sockets of 2 of 20 buckets send a header line (each every 500 ms), slow bodies of 1 bucket a byte (each every 1 s). */
  #dripTick(): void {
    const t = this.#tick++;
    for (const a of this.#live) {
      if (a.connectedAt === 0 || a.socket.destroyed) continue;
      if (a.kind === 'slowloris' && a.bucket % 10 === t % 10) {
        a.socket.write(`x-drip-${a.lines++}: ${'a'.repeat(8)}\r\n`);
      } else if (a.kind === 'slowBody' && a.bucket === t % 20) {
        a.socket.write('a');
      }
    }
  }

  /** Stops reopening, records what is still open, destroys every socket. */
  stop(): void {
    if (!this.#running && this.#live.size === 0) return;
    const now = performance.now();
    if (this.#running) {
      this.stoppedAt = now;
      for (const a of this.#live) {
        if (a.connectedAt === 0) continue;
        const st = this.stats[a.kind];
        st.openAtStop++;
        st.oldestOpenAtStopMs = Math.max(st.oldestOpenAtStopMs, now - a.connectedAt);
      }
    }
    this.#running = false;
    clearInterval(this.#pump);
    clearInterval(this.#drip);
    for (const a of this.#live) a.socket.destroy();
  }

  /** Resolves once every socket has emitted 'close' (or after `maxMs`). */
  async closed(maxMs: number): Promise<number> {
    const deadline = performance.now() + maxMs;
    while (this.#live.size > 0 && performance.now() < deadline) await sleep(20);
    return this.#live.size;
  }
}
