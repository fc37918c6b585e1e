/**
 * Pub/sub channels on a Redis handle's subscriber connection, shared by
 * whoever listens on it (idempotency/redis-store.ts, fleet/redis-bus.ts).
 */
import type { Redis, Cluster } from 'ioredis'

/** One listener on a channel. */
export interface ChannelMember {
  onMessage (message: string): void
  /** The subscription took effect (first time, or again after a reconnect). */
  onSubscribed (): void
}

/**
 * One 'message' listener and one SUBSCRIBE per (subscriber connection,
 * channel), however many members share them: the idempotency stores of
 * every route on one handle listen on the same channel, the fleet bus on
 * its own, and one member's leave() must not unsubscribe the others.
 * Subscribes when the connection is ready (the subscriber may still be
 * connecting on first use, and there is no offline queue), and again on
 * every 'ready' after a reconnect.
 */
export class ChannelHub {
  readonly #sub: Redis | Cluster
  readonly #members = new Map<string, Set<ChannelMember>>()
  readonly #confirmed = new Set<string>()
  readonly #pending = new Set<string>()

  constructor (sub: Redis | Cluster) {
    this.#sub = sub
    sub.on('message', (channel: string, message: string) => {
      const members = this.#members.get(channel)
      if (members !== undefined) for (const m of members) m.onMessage(message)
    })
    sub.on('ready', () => {
      // ioredis re-subscribes channels it had on its own; this also covers a
      // subscribe that failed, and tells the members to look again.
      this.#confirmed.clear()
      for (const channel of this.#members.keys()) this.#subscribe(channel)
    })
    sub.on('close', () => { this.#confirmed.clear() })
  }

  join (channel: string, member: ChannelMember): void {
    let members = this.#members.get(channel)
    if (members === undefined) this.#members.set(channel, members = new Set())
    members.add(member)
    if (this.#confirmed.has(channel)) member.onSubscribed()
    else this.#subscribe(channel)
  }

  leave (channel: string, member: ChannelMember): void {
    const members = this.#members.get(channel)
    if (members === undefined) return
    members.delete(member)
    if (members.size > 0) return
    this.#members.delete(channel)
    this.#confirmed.delete(channel)
    if (this.#sub.status === 'ready') this.#sub.unsubscribe(channel).catch(() => {})
  }

  #subscribe (channel: string): void {
    // Not ready yet (no offline queue): the 'ready' listener subscribes.
    if (this.#pending.has(channel) || this.#sub.status !== 'ready') return
    this.#pending.add(channel)
    this.#sub.subscribe(channel).then(() => {
      this.#pending.delete(channel)
      const members = this.#members.get(channel)
      if (members === undefined) return
      this.#confirmed.add(channel)
      for (const m of members) m.onSubscribed()
    }, () => {
      // Lost the connection meanwhile: the next 'ready' subscribes again.
      this.#pending.delete(channel)
    })
  }
}

const hubs = new WeakMap<Redis | Cluster, ChannelHub>()

/** The hub of a subscriber connection (one per connection, made on first use). */
export function hubFor (sub: Redis | Cluster): ChannelHub {
  let hub = hubs.get(sub)
  if (hub === undefined) hubs.set(sub, hub = new ChannelHub(sub))
  return hub
}
