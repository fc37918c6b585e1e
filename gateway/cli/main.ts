#!/usr/bin/env node
/**
 * `gateway run --policy FILE` and `gateway check FILE…`.
 * run: SIGHUP reloads the policy; SIGTERM/SIGINT drain and exit 0.
 */
import { runCli, describeFatal } from './commands.js'

// A reader of stdout/stderr that goes away (`gateway run | head`, a closed
// log pipe) must not take the gateway down: what cannot be written is lost,
// the requests in flight are not.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {})

runCli(process.argv.slice(2)).then(code => {
  if (code !== null) process.exitCode = code
}, err => {
  process.stderr.write(describeFatal(err))
  process.exitCode = 1
})
