/**
 * `npm start`: the quick start. Starts the local demo services (payment and
 * product, each a primary and a backup) and the gateway on
 * policies/default.yaml in front of them, in one process, so a new user can
 * `curl localhost:8080/pay/checkout` at once, and (with `npm run load`
 * running) inject a fault and watch the gateway heal around it, as the
 * README walkthrough shows. Ctrl-C stops both.
 *
 * `POLICY=path npm start` uses another policy with the same demo services.
 */
import { startDemoUpstreams, DEMO_NAMES } from './demo-upstreams.js'
import { runCli } from '../gateway/cli/commands.js'

const policy = process.env.POLICY ?? 'policies/default.yaml'
const demo = await startDemoUpstreams()
for (const name of DEMO_NAMES) {
  const u = demo.upstreams[name]
  process.stdout.write(`demo: ${name.padEnd(16)} ${u.url}  (inject faults: curl -X POST ${u.url}/_fault -d '{"latencyMs":5000}')\n`)
}
const code = await runCli(['run', '--policy', policy])
if (code !== null) {
  await demo.close()
  process.exit(code)
}
process.stdout.write(`
try:  curl -s localhost:8080/pay/checkout -d '{"amount":42}'
      curl -s localhost:8080/products/sku-1
      curl -s -i localhost:8080/sms/send -d '{"phone":"+49 170 1234567","template":"sale-1212"}'   # twice: the second is replayed
      curl -s localhost:9901/status
see it heal (README, "Walkthrough"):
      npm run load                                                    # in another terminal: 25 req/s to /pay/checkout
      curl -s -X POST 127.0.0.1:9101/_fault -d '{"latencyMs":5000}'   # pay-primary slow → shift.step
      curl -s localhost:9901/events                                   # what the gateway decided
      curl -s -X DELETE 127.0.0.1:9101/_fault                         # healed → shift.ramp … shift.restored
`)
