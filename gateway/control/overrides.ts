/**
 * Guarded overrides: an operator taking manual control of one thing for a
 * while — pin a route's backup share, drain an upstream, force a breaker open
 * or closed, pause a route's shift controller. Each has a reason and an
 * expiry (at most OVERRIDE_MAX_TTL_MS), replaces an earlier override of the
 * same target, and is an event when set, cleared or expired (so it lands in
 * the incident timeline as an operator action). This book only holds them;
 * the control loop applies them through the views (views/ports.ts) on every
 * tick, so they survive reloads and never touch the data plane's objects.
 */
import type { Clock } from '../core/clock.js'
import type { EventSink } from '../events/log.js'
import type { EventDraft } from '../events/types.js'
import type { ControlRoute } from '../views/ports.js'

export type OverrideKind = 'pin' | 'drain' | 'breaker' | 'pause'
export const OVERRIDE_KINDS: readonly OverrideKind[] = ['pin', 'drain', 'breaker', 'pause']

/** The longest an override may hold: a forgotten one must not outlive the day. */
export const OVERRIDE_MAX_TTL_MS = 24 * 3600_000
/** Overrides held at once (routes × upstreams × kinds is small; this bounds a runaway script). */
export const OVERRIDE_MAX = 256

/** What an operator asks for (validated by the admin API's schema, then by check()). */
export interface OverrideRequest {
  readonly kind: OverrideKind
  readonly route: string
  /** drain, breaker: the upstream of the route. */
  readonly upstream?: string
  /** pin: the backup share to hold (0..1). */
  readonly share?: number
  /** breaker: the state to force. */
  readonly state?: 'open' | 'closed'
  readonly reason: string
  readonly ttlMs: number
}

export interface Override {
  readonly id: string
  readonly kind: OverrideKind
  readonly route: string
  readonly upstream: string | null
  readonly share: number | null
  readonly state: 'open' | 'closed' | null
  readonly reason: string
  /** Wall-clock ISO times, for people. */
  readonly setAt: string
  readonly expiresAt: string
  /** Monotonic clock ms at which it ends (the controllers' clock). */
  readonly expiresT: number
}

/** What an upstream of a route is held to now. */
export interface UpstreamHold {
  readonly drained: boolean
  readonly breaker: 'open' | 'closed' | null
  /** Monotonic ms the longest hold that keeps it out ends (0 = none). */
  readonly until: number
}

const FREE: UpstreamHold = { drained: false, breaker: null, until: 0 }

/** Why a request cannot be applied to the routes of the moment, or null when it can. */
export function checkOverride (req: OverrideRequest, routes: readonly ControlRoute[]): string | null {
  const route = routes.find(r => r.config.name === req.route)
  if (route === undefined) return `no route named "${req.route}"`
  if (!(req.ttlMs > 0 && req.ttlMs <= OVERRIDE_MAX_TTL_MS)) return 'ttl must be more than 0 and at most 24h'
  if (req.reason.trim() === '') return 'a reason is required'
  switch (req.kind) {
    case 'pin':
      if (req.share === undefined || !(req.share >= 0 && req.share <= 1)) return 'pin needs a share between 0 and 1'
      if (route.backups.length === 0) return `route "${req.route}" has no backups to pin a share to`
      return null
    case 'pause':
      return route.config.shift === null ? `route "${req.route}" has no shift controller to pause` : null
    case 'drain':
    case 'breaker': {
      if (req.upstream === undefined) return `${req.kind} needs an upstream`
      const u = route.upstreams.find(x => x.config.name === req.upstream)
      if (u === undefined) return `route "${req.route}" has no upstream named "${req.upstream}"`
      if (req.kind === 'breaker' && req.state !== 'open' && req.state !== 'closed') return 'breaker needs a state: open or closed'
      if (req.kind === 'breaker' && route.config.breaker === null) return `route "${req.route}" has no breaker`
      return null
    }
  }
}

export class OverrideBook {
  readonly #clock: Clock
  readonly #emit: EventSink
  readonly #held = new Map<string, Override>()
  #seq = 0

  constructor (clock: Clock, emit: EventSink) {
    this.#clock = clock
    this.#emit = emit
  }

  /** Sets (or replaces, for the same target) an override; the request must have passed checkOverride. */
  set (req: OverrideRequest, before: string | number, id?: string): Override {
    const key = targetKey(req.kind, req.route, req.upstream ?? null)
    const old = this.#held.get(key)
    if (old === undefined && this.#held.size >= OVERRIDE_MAX) throw new RangeError(`at most ${OVERRIDE_MAX} overrides at once`)
    const wall = this.#clock.wall()
    const o: Override = {
      id: id ?? `ov-${++this.#seq}`,
      kind: req.kind,
      route: req.route,
      upstream: req.kind === 'drain' || req.kind === 'breaker' ? req.upstream ?? null : null,
      share: req.kind === 'pin' ? req.share ?? 0 : null,
      state: req.kind === 'breaker' ? req.state ?? null : null,
      reason: req.reason.trim(),
      setAt: new Date(wall).toISOString(),
      expiresAt: new Date(wall + req.ttlMs).toISOString(),
      expiresT: this.#clock.now() + req.ttlMs
    }
    this.#held.delete(key)
    this.#held.set(key, o)
    this.#emit(draft(o, 'override.set', before, held(o), `${describe(o)} by an operator${old === undefined ? '' : ` (replaces ${old.id})`}, until ${o.expiresAt}: ${o.reason} [${o.id}]`))
    return o
  }

  /** Ends an override before its time; null when no such id is held. */
  clear (id: string): Override | null {
    for (const [key, o] of this.#held) {
      if (o.id !== id) continue
      this.#held.delete(key)
      this.#emit(draft(o, 'override.cleared', held(o), 'released', `${describe(o)} cleared by an operator [${o.id}]`))
      return o
    }
    return null
  }

  /** Ends the overrides whose time is up (the control loop calls it each tick). */
  expire (now: number): void {
    for (const [key, o] of this.#held) {
      if (o.expiresT > now) continue
      this.#held.delete(key)
      this.#emit(draft(o, 'override.expired', held(o), 'released', `${describe(o)} expired (set ${o.setAt}: ${o.reason}) [${o.id}]`))
    }
  }

  /** Drops the overrides of routes or upstreams a reload removed (no event: the target is gone). */
  retain (routes: readonly ControlRoute[]): void {
    for (const [key, o] of this.#held) {
      const r = routes.find(x => x.config.name === o.route)
      if (r === undefined || (o.upstream !== null && !r.upstreams.some(u => u.config.name === o.upstream))) this.#held.delete(key)
    }
  }

  list (): readonly Override[] {
    return [...this.#held.values()]
  }

  get size (): number {
    return this.#held.size
  }

  /** The pinned backup share of a route, or null. */
  pin (route: string): number | null {
    return this.#held.get(targetKey('pin', route, null))?.share ?? null
  }

  paused (route: string): boolean {
    return this.#held.has(targetKey('pause', route, null))
  }

  upstream (route: string, upstream: string): UpstreamHold {
    if (this.#held.size === 0) return FREE
    const d = this.#held.get(targetKey('drain', route, upstream))
    const b = this.#held.get(targetKey('breaker', route, upstream))
    if (d === undefined && b === undefined) return FREE
    const out = [d, b?.state === 'open' ? b : undefined].reduce((t, o) => Math.max(t, o?.expiresT ?? 0), 0)
    return { drained: d !== undefined, breaker: b?.state ?? null, until: out }
  }
}

function targetKey (kind: OverrideKind, route: string, upstream: string | null): string {
  return `${kind}\u0000${route}\u0000${upstream ?? ''}`
}

function held (o: Override): string | number {
  switch (o.kind) {
    case 'pin': return o.share ?? 0
    case 'drain': return 'drained'
    case 'breaker': return `forced ${o.state ?? ''}`
    case 'pause': return 'paused'
  }
}

function describe (o: Override): string {
  switch (o.kind) {
    case 'pin': return `backup share of ${o.route} pinned to ${Math.round((o.share ?? 0) * 1000) / 10}%`
    case 'drain': return `${o.route}/${o.upstream ?? ''} drained`
    case 'breaker': return `breaker of ${o.route}/${o.upstream ?? ''} forced ${o.state ?? ''}`
    case 'pause': return `shift controller of ${o.route} paused`
  }
}

function draft (o: Override, kind: EventDraft['kind'], before: string | number, after: string | number, detail: string): EventDraft {
  return { kind, route: o.route, ...(o.upstream === null ? {} : { upstream: o.upstream }), before, after, enforced: true, detail }
}
