/**
 * Child processes a test spawns die with it: on a normal exit, and when the
 * test runner stops the test with SIGTERM (its timeout), which would
 * otherwise leave them running (a gateway no longer dies of a closed pipe).
 */
import type { ChildProcess } from 'node:child_process'

const live = new Set<ChildProcess>()
let hooked = false

function killAll (): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
}

/** Kills `proc` if this process exits or is terminated first; forgets it once it has exited. */
export function killWithTest (proc: ChildProcess): void {
  live.add(proc)
  proc.once('exit', () => live.delete(proc))
  if (hooked) return
  hooked = true
  process.once('exit', killAll)
  process.once('SIGTERM', () => {
    killAll()
    process.kill(process.pid, 'SIGTERM') // the listener is gone: the default action now
  })
}
