/**
 * How the instances of a fleet hear each other: a best-effort broadcast of
 * small messages. Two transports: Redis pub/sub (instances on several
 * hosts, redis-bus.ts) and the cluster IPC channel (workers of one process,
 * workers/worker-state.ts). A lost message costs nothing: every instance
 * re-publishes its state every syncInterval, and state not refreshed within
 * staleAfter is ignored.
 */

/** One instance's view of one route, published every syncInterval (and at once when its share changes). */
export interface ShareReport {
  readonly instance: string
  readonly route: string
  /** The share this instance's own controller decided (0..1), before merging. */
  readonly share: number
  readonly phase: string
  /** The primaries' signal (ms) this instance measures; null with too few samples. */
  readonly primaryMs: number | null
}

export interface FleetBus {
  /** Fire and forget: never throws, never waits on the network. */
  publish (reports: readonly ShareReport[]): void
  /** Reports from the other instances (never this instance's own). */
  onReports (fn: (reports: readonly ShareReport[]) => void): void
  close (): Promise<void>
}
