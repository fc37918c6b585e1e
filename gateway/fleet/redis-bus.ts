/**
 * The fleet bus on Redis pub/sub: one channel per keyPrefix. Publishing is
 * fire and forget (no offline queue: with Redis away a publish fails at
 * once and is dropped; the next refresh carries the state anyway).
 */
import type { FleetBus, ShareReport } from './bus.js'
import type { RedisHandle } from './redis.js'

const MAX_MESSAGE = 64 * 1024

export class RedisBus implements FleetBus {
  readonly #handle: RedisHandle
  readonly #channel: string
  readonly #listeners: Array<(r: readonly ShareReport[]) => void> = []
  #subscribed = false
  #closed = false

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
    if (this.#subscribed) return
    this.#subscribed = true
    const sub = this.#handle.subscriber()
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel || message.length > MAX_MESSAGE) return
      let parsed: unknown
      try { parsed = JSON.parse(message) } catch { return }
      if (!Array.isArray(parsed)) return
      // Anything thrown here would surface inside ioredis's reply parser: never let it.
      for (const l of this.#listeners) {
        try { l(parsed as ShareReport[]) } catch {}
      }
    })
    // Without an offline queue a subscribe before the connection is ready
    // fails, so (re)subscribe on every 'ready', the first one included.
    const subscribe = (): void => { sub.subscribe(this.#channel).catch(() => {}) }
    sub.on('ready', subscribe)
    if (sub.status === 'ready') subscribe()
  }

  async close (): Promise<void> {
    this.#closed = true
    if (this.#subscribed) await this.#handle.subscriber().unsubscribe(this.#channel).catch(() => {})
  }
}
