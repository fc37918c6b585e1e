/**
 * The keep-alive canary of the edge flood bench: a small client in the
 * orchestrator's process that, unlike the pacer (which only counts), records
 * why its requests fail, so a run under attack shows whether the gate closed
 * real clients' keep-alive connections.
 */
import http from 'node:http';

/** Requests per second the canary sends. */
export const CANARY_RATE = 60;
/** Keep-alive connections it sends them over. */
export const CANARY_CONNECTIONS = 3;

/** What the keep-alive canary saw in one phase. */
export interface CanaryStats {
  sent: number;
  ok: number;
  non2xx: number;
  errors: number;
  /** Transport errors of requests sent on a reused keep-alive connection. */
  errorsOnReusedSocket: number;
  errorCodes: Record<string, number>;
  /** Connections the canary opened. */
  connectionsOpened: number;
  /** Its connections the gateway closed (keep-alive timeout is 30 s, so none should close in a phase). */
  connectionsClosedByGateway: number;
}

/**
 * A small keep-alive client in this process (60 req/s over 3 connections,
 * about the pacer's rate per connection)
 * that records WHY requests fail, which the pacer does not: the error code,
 * whether the request went on a reused keep-alive connection, and how often
 * the gateway closed one of its idle keep-alive connections.
 */
export class Canary {
  stats: CanaryStats = Canary.#empty();
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: CANARY_CONNECTIONS });
  readonly #seen = new WeakSet<object>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(private readonly url: string, private readonly rate = CANARY_RATE) {}

  static #empty(): CanaryStats {
    return { sent: 0, ok: 0, non2xx: 0, errors: 0, errorsOnReusedSocket: 0, errorCodes: {}, connectionsOpened: 0, connectionsClosedByGateway: 0 };
  }

  /** Starts sending, one request every 1000 / rate ms. */
  start(): void {
    this.#running = true;
    this.#timer = setInterval(() => this.#send(), 1000 / this.rate);
  }

  /** Returns the stats so far and starts counting afresh. */
  take(): CanaryStats {
    const s = this.stats;
    this.stats = Canary.#empty();
    return s;
  }

  #send(): void {
    const st = this.stats;
    st.sent++;
    const req = http.get(this.url, { agent: this.#agent }, (res) => {
      res.resume();
      res.once('end', () => {
        if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) this.stats.ok++;
        else this.stats.non2xx++;
      });
    });
    req.setTimeout(10_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.once('socket', (sock) => {
      if (this.#seen.has(sock)) return;
      this.#seen.add(sock);
      this.stats.connectionsOpened++;
      sock.once('close', () => {
        if (this.#running) this.stats.connectionsClosedByGateway++;
      });
    });
    req.once('error', (err: NodeJS.ErrnoException) => {
      const s = this.stats;
      s.errors++;
      if (req.reusedSocket) s.errorsOnReusedSocket++;
      const code = `${err.code ?? err.message}${req.reusedSocket ? ' (reused socket)' : ''}`;
      s.errorCodes[code] = (s.errorCodes[code] ?? 0) + 1;
    });
  }

  /** Stops sending and closes its connections (closes from then on are not counted). */
  stop(): void {
    this.#running = false;
    clearInterval(this.#timer);
    this.#agent.destroy();
  }
}
