// `npm run demo` is the S1 scenario (payment channel 200 ms → 5 s, traffic
// shifted to the backup and back). It arrives with the self-healing issue;
// until then this says so instead of printing anything that looks like a result.
process.stderr.write('npm run demo: the S1 self-healing demo is not built yet (it comes with the traffic-shift controller).\n' +
  'Meanwhile `npm start` runs the gateway with the demo services, and you can inject faults by hand:\n' +
  "  curl -X POST http://127.0.0.1:9101/_fault -d '{\"latencyMs\":5000}'\n")
process.exitCode = 1
