/**
 * Watches a policy file, and the files it names (TLS certificates and
 * keys), and calls back once per burst of changes (editors write, rename
 * and chmod in quick succession; traefik's configuration watcher coalesces
 * the same way). Directories are watched, not files, because an editor that
 * saves by rename replaces the inode a file watch holds. In the folders of
 * the named files any change counts: certificate tools swap whole folders
 * through a symlink (Kubernetes secrets, certbot's live/), so the changed
 * name need not be the file's (in the policy's own folder only the named
 * files count). Whether the content really changed is
 * decided by the caller (hash compare).
 */
import { watch, type FSWatcher } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'

export class PolicyWatcher {
  readonly #file: string
  readonly #debounceMs: number
  readonly #onChange: () => void
  #watcher: FSWatcher | null = null
  /** Folders of the files the policy names, by path. */
  readonly #also = new Map<string, FSWatcher>()
  /** Names of the policy's files that sit in the policy's own folder. */
  #ownNames = new Set<string>()
  #timer: NodeJS.Timeout | null = null
  #running = false

  /** @param debounceMs quiet time after the last event before reloading. @default 150 */
  constructor (file: string, onChange: () => void, debounceMs = 150) {
    this.#file = resolve(file)
    this.#onChange = onChange
    this.#debounceMs = debounceMs
  }

  start (): void {
    if (this.#running) return
    this.#running = true
    const name = basename(this.#file)
    this.#watcher = this.#watch(dirname(this.#file), changed => changed === null || changed === name || this.#ownNames.has(changed), () => {
      this.#watcher = null
    })
  }

  /** Also watch these files' folders (replacing the previous set); the policy's own folder is already watched. */
  watchAlso (files: readonly string[]): void {
    if (!this.#running) return
    const own = dirname(this.#file)
    this.#ownNames = new Set(files.filter(f => dirname(resolve(f)) === own).map(f => basename(f)))
    const dirs = new Set(files.map(f => dirname(resolve(f))).filter(d => d !== own))
    for (const [dir, w] of this.#also) {
      if (!dirs.has(dir)) {
        w.close()
        this.#also.delete(dir)
      }
    }
    for (const dir of dirs) {
      if (this.#also.has(dir)) continue
      const w = this.#watch(dir, () => true, () => { this.#also.delete(dir) })
      if (w !== null) this.#also.set(dir, w)
    }
  }

  stop (): void {
    this.#running = false
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#watcher?.close()
    this.#watcher = null
    for (const w of this.#also.values()) w.close()
    this.#also.clear()
  }

  #watch (dir: string, counts: (changed: string | null) => boolean, gone: () => void): FSWatcher | null {
    let w: FSWatcher
    try {
      w = watch(dir, { persistent: false }, (_event, changed) => {
        if (counts(changed)) this.#changed()
      })
    } catch {
      return null // a folder that cannot be watched: SIGHUP and POST /reload still work
    }
    // A watcher error (directory removed, too many watches) must not crash the
    // gateway: SIGHUP and POST /reload still work.
    w.on('error', () => {
      w.close()
      gone()
    })
    return w
  }

  #changed (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#onChange()
    }, this.#debounceMs)
  }
}
