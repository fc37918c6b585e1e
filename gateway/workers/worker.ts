/**
 * A worker of `gateway run --workers N`: an ordinary Gateway without admin
 * API or file watcher (the primary has those), whose idempotency keys and
 * shift shares go through the primary when there is no Redis, whose events
 * are forwarded to the primary's log, and which reloads, reports status and
 * drains when the primary says so.
 */
import { hostname } from 'node:os'
import { systemClock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { StoreConfig } from '../policy/snapshot.js'
import type { SharedState } from '../app/shared-state.js'
import { Gateway } from '../app/gateway.js'
import { isMessage, type ToPrimary, type ToWorker } from './protocol.js'
import { PrimaryLink, workerState } from './worker-state.js'

export async function runWorker (file: string, logger: Logger): Promise<void> {
  const send = (m: ToPrimary): void => { process.send?.(m) }
  const link = new PrimaryLink(send)
  const instance = `${hostname()}:${process.pid}`
  // The policy is read once, by Gateway.start; without Redis the primary holds the shared state.
  const shared = (store: StoreConfig): SharedState | null => store.redis === null ? workerState(link, systemClock, instance, store.syncIntervalMs, store.staleAfterMs) : null
  const gw = await Gateway.start({ policyFile: file, logger, watch: false, admin: false, shared })
  gw.events.subscribe(e => {
    const { seq: _s, at: _a, t: _t, policyVersion: _p, ...event } = e
    send({ t: 'event', event })
  })
  let draining = false
  const drain = (): void => {
    if (draining) return
    draining = true
    gw.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.on('message', (m: unknown) => {
    if (link.receive(m) || !isMessage(m)) return
    const msg = m as ToWorker
    if (msg.t === 'status') send({ t: 'answer', id: msg.id, value: gw.status() })
    else if (msg.t === 'metrics') gw.metrics.json().then(v => { send({ t: 'answer', id: msg.id, value: v }) }, () => { send({ t: 'answer', id: msg.id, value: [] }) })
    else if (msg.t === 'reload') gw.reload(msg.trigger).then(r => { send({ t: 'answer', id: msg.id, value: r }) }, () => { send({ t: 'answer', id: msg.id, value: null }) })
    else if (msg.t === 'override') {
      const value = msg.op === 'set' ? gw.setOverride(msg.req, msg.overrideId) : msg.op === 'clear' ? gw.clearOverride(msg.overrideId) : gw.overrides
      send({ t: 'answer', id: msg.id, value })
    } else if (msg.t === 'drain') drain()
  })
  // Signals are the primary's to coordinate (Ctrl-C reaches the whole group);
  // a worker whose primary is gone drains on its own.
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => {})
  process.on('disconnect', drain)
  send({ t: 'ready', listeners: gw.addresses().listeners } as unknown as ToPrimary)
}
