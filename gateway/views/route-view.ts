/**
 * What the control plane decided for one route, read by the data plane on
 * every pick. Kept across reloads (by route name) so a reload never resets
 * a shift in progress.
 */
export class RouteView {
  readonly route: string
  /** Share (0..1) of the route's traffic sent to the backups: the shift controller's, merged with the fleet's. */
  backupShare = 0
  /** Hedge delay from the observed latency (ms); 0 = not known yet. */
  hedgeDelayMs = 0

  constructor (route: string) {
    this.route = route
  }
}

export class RouteViews {
  readonly #views = new Map<string, RouteView>()

  get (route: string): RouteView {
    let v = this.#views.get(route)
    if (v === undefined) {
      v = new RouteView(route)
      this.#views.set(route, v)
    }
    return v
  }

  retain (routes: ReadonlySet<string>): void {
    for (const name of this.#views.keys()) if (!routes.has(name)) this.#views.delete(name)
  }
}
