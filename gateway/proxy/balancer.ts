/**
 * Smooth weighted round-robin (nginx's algorithm) within priority levels:
 * the lowest level with an available, non-drained member takes the request;
 * higher levels (backups) take traffic only when every lower one is out.
 * Deterministic, so tests can assert exact spreads.
 */

export interface Pickable {
  readonly weight: number
  /** False while the control plane has taken it out (breaker, ejection). */
  readonly available: boolean
}

interface Level<T> {
  readonly members: readonly T[]
  readonly current: Float64Array
}

export class Balancer<T extends Pickable> {
  readonly #levels: ReadonlyArray<Level<T>>

  /** @param levels members grouped by priority, lowest first */
  constructor (levels: ReadonlyArray<readonly T[]>) {
    this.#levels = levels.map(members => ({ members, current: new Float64Array(members.length) }))
  }

  /** The next member, or null when no level has one available. */
  pick (): T | null {
    for (const level of this.#levels) {
      const chosen = pickFromLevel(level)
      if (chosen !== null) return chosen
    }
    return null
  }
}

function pickFromLevel<T extends Pickable> (level: Level<T>): T | null {
  const { members, current } = level
  let best = -1
  let total = 0
  for (let i = 0; i < members.length; i++) {
    const m = members[i] as T
    if (m.weight <= 0 || !m.available) continue
    current[i] = (current[i] as number) + m.weight
    total += m.weight
    if (best === -1 || (current[i] as number) > (current[best] as number)) best = i
  }
  if (best === -1) return null
  current[best] = (current[best] as number) - total
  return members[best] as T
}
