/**
 * The relay behind an accepted upgrade: bytes are piped both ways with
 * backpressure, unread. The two connections live and die together:
 * - an error on either side destroys both at once;
 * - an end or close on one side ends the other after its pending bytes are
 *   written (a half-close is passed on), and both are destroyed at most
 *   FIN_GRACE_MS later whatever the peers do;
 * - no byte in either direction for `idleMs` destroys both (HAProxy's
 *   `timeout tunnel`).
 * One lazily re-armed timer per tunnel: reading a chunk only stores a time.
 */
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'

/** Longest wait for the other side to finish once one side has ended. */
export const FIN_GRACE_MS = 5000

export type TunnelEnd = 'closed' | 'error' | 'idle'

export interface TunnelOptions {
  readonly idleMs: number
  /** Monotonic ms. */
  readonly now: () => number
  /** Both connections are closed; called once. */
  readonly onClose: (how: TunnelEnd) => void
}

/** Starts relaying; `client` and `upstream` must both be fresh, already upgraded sockets. */
export function openTunnel (client: Duplex, upstream: Duplex, opts: TunnelOptions): void {
  let last = opts.now()
  let how: TunnelEnd = 'closed'
  let open = 2
  let grace: NodeJS.Timeout | null = null
  let idle: NodeJS.Timeout | null = null

  const destroyBoth = (reason: TunnelEnd): void => {
    if (how === 'closed') how = reason
    client.destroy()
    upstream.destroy()
  }
  const touch = (): void => { last = opts.now() }
  const checkIdle = (): void => {
    const quiet = opts.now() - last
    if (quiet >= opts.idleMs) destroyBoth('idle')
    else idle = setTimeout(checkIdle, opts.idleMs - quiet)
  }
  const winding = (): void => {
    grace ??= setTimeout(() => destroyBoth('closed'), FIN_GRACE_MS)
  }
  const closed = (other: Duplex) => (): void => {
    if (--open === 0) {
      if (idle !== null) clearTimeout(idle)
      if (grace !== null) clearTimeout(grace)
      opts.onClose(how)
      return
    }
    // The other side may still hold bytes for its peer: flush them, then FIN.
    if (!other.writableEnded) other.end()
    winding()
  }

  for (const s of [client, upstream]) {
    noTimeout(s)
    s.on('data', touch)
    s.on('end', winding)
    s.on('error', () => destroyBoth('error'))
  }
  client.once('close', closed(upstream))
  upstream.once('close', closed(client))
  idle = setTimeout(checkIdle, opts.idleMs)
  client.pipe(upstream)
  upstream.pipe(client)
}

/** A server or pool timeout inherited from the HTTP phase must not fire inside the tunnel. */
function noTimeout (s: Duplex): void {
  const sock = s as Partial<Socket>
  if (typeof sock.setTimeout === 'function') sock.setTimeout(0)
  if (typeof sock.setNoDelay === 'function') sock.setNoDelay(true)
}
