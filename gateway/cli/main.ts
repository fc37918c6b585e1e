#!/usr/bin/env node
/**
 * `gateway run --policy FILE` and `gateway check FILE…`.
 * run: SIGHUP reloads the policy; SIGTERM/SIGINT drain and exit 0.
 */
import { runCli } from './commands.js'

runCli(process.argv.slice(2)).then(code => {
  if (code !== null) process.exitCode = code
}, err => {
  process.stderr.write(`gateway: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
