/**
 * The fleet bus on Redis pub/sub: one channel per keyPrefix, joined through
 * the handle's shared channel hub (redis-channels.ts). Publishing is
 * fire and forget (no offline queue: with Redis away a publish fails at
 * once and is dropped; the next refresh carries the state anyway).
 */
import type { FleetBus, ShareReport } from './bus.js'
import type { RedisHandle } from './redis.js'
import { hubFor, type ChannelHub, type ChannelMember } from './redis-channels.js'

const MAX_MESSAGE = 64 * 1024

export class RedisBus implements FleetBus {
  readonly #handle: RedisHandle
  readonly #channel: string
  readonly #listeners: Array<(r: readonly ShareReport[]) => void> = []
  #hub: ChannelHub | null = null
  #closed = false
  readonly #member: ChannelMember = {
    onMessage: message => {
      if (message.length > MAX_MESSAGE) return
      let parsed: unknown
      try { parsed = JSON.parse(message) } catch { return }
      if (!Array.isArray(parsed)) return
      // Anything thrown here would surface inside ioredis's reply parser: never let it.
      for (const l of this.#listeners) {
        try { l(parsed as ShareReport[]) } catch {}
      }
    },
    onSubscribed: () => {} // a missed report costs nothing: every instance refreshes every syncInterval
  }

  constructor (handle: RedisHandle, keyPrefix: string) {
    this.#handle = handle
    this.#channel = `${keyPrefix}fleet:shares`
  }

  publish (reports: readonly ShareReport[]): void {
    if (this.#closed || reports.length === 0) return
    this.#handle.client.publish(this.#channel, JSON.stringify(reports)).catch(() => {})
  }

  onReports (fn: (r: readonly ShareReport[]) => void): void {
    this.#listeners.push(fn)
    if (this.#hub !== null || this.#closed) return
    this.#hub = hubFor(this.#handle.subscriber())
    this.#hub.join(this.#channel, this.#member)
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#hub?.leave(this.#channel, this.#member)
    this.#hub = null
  }
}
