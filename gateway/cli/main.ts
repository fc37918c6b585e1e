#!/usr/bin/env node
/**
 * `gateway run --policy FILE` and `gateway check FILE…`.
 * run: SIGHUP reloads the policy; SIGTERM/SIGINT drain and exit 0.
 */
import { runCli, describeFatal } from './commands.js'

runCli(process.argv.slice(2)).then(code => {
  if (code !== null) process.exitCode = code
}, err => {
  process.stderr.write(describeFatal(err))
  process.exitCode = 1
})
