/**
 * Watches a policy file and calls back once per burst of changes (editors
 * write, rename and chmod in quick succession; traefik's configuration
 * watcher coalesces the same way). The directory is watched, not the file,
 * because an editor that saves by rename replaces the inode a file watch holds.
 * Whether the content really changed is decided by the caller (hash compare).
 */
import { watch, type FSWatcher } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'

export class PolicyWatcher {
  readonly #file: string
  readonly #debounceMs: number
  readonly #onChange: () => void
  #watcher: FSWatcher | null = null
  #timer: NodeJS.Timeout | null = null

  /** @param debounceMs quiet time after the last event before reloading. @default 150 */
  constructor (file: string, onChange: () => void, debounceMs = 150) {
    this.#file = resolve(file)
    this.#onChange = onChange
    this.#debounceMs = debounceMs
  }

  start (): void {
    if (this.#watcher !== null) return
    const name = basename(this.#file)
    this.#watcher = watch(dirname(this.#file), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed !== name) return
      if (this.#timer !== null) clearTimeout(this.#timer)
      this.#timer = setTimeout(() => {
        this.#timer = null
        this.#onChange()
      }, this.#debounceMs)
    })
    // A watcher error (directory removed, too many watches) must not crash the
    // gateway: SIGHUP and POST /reload still work.
    this.#watcher.on('error', () => this.stop())
  }

  stop (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#watcher?.close()
    this.#watcher = null
  }
}
