/**
 * The latency-triggered shift over real sockets, with short windows: a slow
 * primary is noticed from requests still in flight, traffic moves to the
 * backup in steps up to max (the probe share stays on the primary), and
 * comes back step by step once the primary heals. Guard, shadow mode and
 * hysteresis too.
 */
import t from 'tap'
import { Agent } from 'undici'
import { upstream, startGateway, policyYaml, route, fastShift } from './helpers/harness.js'
import { hit, paced, countBy, until, type Answer } from './helpers/load.js'


async function setup (t: { teardown (fn: () => unknown): void }, extra = '', backupLatency = 5): Promise<{ url: string, gw: Awaited<ReturnType<typeof startGateway>>['gw'], primary: Awaited<ReturnType<typeof upstream>>, backup: Awaited<ReturnType<typeof upstream>> }> {
  const primary = await upstream(t, { name: 'p', baseline: { latencyMs: 5 } })
  const backup = await upstream(t, { name: 'b', baseline: { latencyMs: backupLatency } })
  const { url, gw } = await startGateway(t, policyYaml(route('pay', '/', [{ name: 'p', url: primary.url }, { name: 'b', url: backup.url, role: 'backup' }], fastShift(extra))), { controlTickMs: 20 })
  return { url, gw, primary, backup }
}

t.test('slow primary: shift seen from in-flight requests, steps to max, keeps the probe share, ramps back', async t => {
  const { url, gw, primary } = await setup(t)
  const agent = new Agent({ connections: 256 })
  t.teardown(async () => await agent.close())
  const answers: Answer[] = []
  let stop = false
  t.teardown(() => { stop = true }) // also when an assertion below throws
  const load = (async () => {
    const inflight: Array<Promise<void>> = []
    while (!stop) {
      inflight.push(hit(`${url}/pay`, agent).then(a => { answers.push(a) }, () => {}))
      await new Promise(resolve => setTimeout(resolve, 20)) // ~50 req/s, open loop
    }
    await Promise.all(inflight)
  })()

  await new Promise(resolve => setTimeout(resolve, 800))
  const spikeAt = Date.now()
  primary.set({ latencyMs: 3000 })
  await until(() => gw.events.since(0).some(e => e.kind === 'shift.step'), 5000, 'first shift')
  const firstShiftMs = Date.now() - spikeAt
  const slowAnswered = answers.filter(a => a.upstream === 'p' && a.ms >= 1000).length
  t.equal(slowAnswered, 0, 'no slow response had come back: the shift was triggered by in-flight requests alone')
  t.ok(firstShiftMs < 2500, `first shift ${firstShiftMs} ms after the spike (< 2.5 s, far below the 3 s latency)`)

  await until(() => gw.runtime.routes[0]?.view.backupShare === 0.9, 5000, 'max share')
  const steps = gw.events.since(0).filter(e => e.kind === 'shift.step')
  t.same(steps.map(e => e.after), [0.3, 0.9], 'a 30% trial onto the unmeasured backup, then (measured fast) straight to max = 100% - minShare')
  t.ok(steps.every((e, i) => i === 0 || (e.before as number) === steps[i - 1]?.after), 'each step starts where the last ended')

  // At max, the primaries keep exactly the probe share.
  const before = answers.length
  await new Promise(resolve => setTimeout(resolve, 1000))
  const status = gw.status() as any
  t.equal(status.routes[0].shift.applied, 0.9)
  t.same(status.routes[0].upstreams.map((u: any) => u.share), [0.1, 0.9], '/status shares')
  void before

  primary.set({}) // heal
  const healAt = Date.now()
  await until(() => gw.events.since(0).some(e => e.kind === 'shift.restored'), 15_000, 'restore')
  const restoreMs = Date.now() - healAt
  stop = true
  await load
  const ramps = gw.events.since(0).filter(e => e.kind === 'shift.ramp')
  t.same(ramps.map(e => e.after), [0.4, 0], 'ramped back in recover steps of 50%')
  t.ok(restoreMs < 12_000, `restored ${restoreMs} ms after healing`)
  const reversals = gw.events.since(0).filter(e => e.kind === 'shift.step' && (e.after as number) < (e.before as number)).length
  t.equal(reversals, 0)
  t.equal(answers.filter(a => a.status !== 200).length, 0, 'no client saw an error')
  const tail = await paced(`${url}/pay`, 50, 400)
  t.same(Object.keys(countBy(tail)), ['p'], 'all traffic back on the primary')
})

t.test('probe share: at max the primaries get exactly minShare of the requests', async t => {
  const { url, gw, primary } = await setup(t)
  primary.set({ latencyMs: 800 })
  await paced(`${url}/pay`, 60, 2500)
  t.equal(gw.runtime.routes[0]?.view.backupShare, 0.9)
  primary.resetCounts()
  const answers = await paced(`${url}/pay`, 100, 1000)
  const c = countBy(answers)
  t.ok((c.p ?? 0) >= 8 && (c.p ?? 0) <= 12, `primary got ${c.p} of ${answers.length} (10% probe share)`)
})

t.test('guard: once the backup shows it is slow too, no further step onto it', async t => {
  // The backup has had no traffic, so the first step is the trial that
  // measures it; after that it is known to be slow and nothing more moves.
  const { url, gw, primary } = await setup(t, '', 800)
  primary.set({ latencyMs: 800 })
  await paced(`${url}/pay`, 40, 3000)
  const ev = gw.events.since(0)
  t.equal(ev.filter(e => e.kind === 'shift.step').length, 1, 'only the first (trial) step')
  const hold = ev.find(e => e.kind === 'shift.hold')
  t.match(hold, { route: 'pay', threshold: 300 })
  t.ok((hold?.measured ?? 0) > 300, `hold names the backup's own latency (${hold?.measured} ms)`)
  t.equal(gw.runtime.routes[0]?.view.backupShare, 0.3, 'share stayed at the trial step')
})

t.test('shadow mode reports decisions and moves nothing', async t => {
  const { url, gw, primary, backup } = await setup(t, '      enforce: false\n')
  primary.set({ latencyMs: 800 })
  await paced(`${url}/pay`, 40, 2500)
  const steps = gw.events.since(0).filter(e => e.kind === 'shift.step')
  t.ok(steps.length >= 2, `decided ${steps.length} steps`)
  t.ok(steps.every(e => e.enforced === false), 'marked as not enforced')
  t.equal(backup.count, 0, 'backup received nothing')
  const st = gw.status() as any
  t.equal(st.routes[0].shift.applied, 0)
  t.ok(st.routes[0].shift.share > 0, 'the would-be share is visible')
  t.equal(st.routes[0].shift.enforce, false)
})

t.test('latency in the hysteresis band neither trips nor flaps', async t => {
  const { url, gw, primary } = await setup(t)
  let slow = false
  const flip = setInterval(() => { slow = !slow; primary.set({ latencyMs: slow ? 220 : 150 }) }, 200)
  t.teardown(() => clearInterval(flip))
  await paced(`${url}/pay`, 40, 2500)
  clearInterval(flip)
  t.same(gw.events.since(0).filter(e => e.kind.startsWith('shift.')).map(e => e.kind), [], 'no shift events')
})

t.test('GET /events and the SSE stream carry the shift events', async t => {
  const { url, gw, primary } = await setup(t)
  const { adminUrl } = { adminUrl: `http://127.0.0.1:${gw.addresses().admin?.port}` }
  const { request } = await import('undici')
  const stream = await request(`${adminUrl}/events/stream?since=0`)
  t.equal(stream.headers['content-type'], 'text/event-stream')
  let text = ''
  stream.body.on('data', (c: Buffer) => { text += c.toString() })
  primary.set({ latencyMs: 800 })
  await paced(`${url}/pay`, 40, 2000)
  const res = await request(`${adminUrl}/events?since=0`)
  const body = await res.body.json() as { events: Array<{ kind: string, seq: number, policyVersion: string }>, lastSeq: number }
  const step = body.events.find(e => e.kind === 'shift.step')
  t.ok(step !== undefined, 'JSON has the step')
  t.equal(step?.policyVersion, 'test')
  t.equal(body.lastSeq, body.events.at(-1)?.seq)
  await until(() => text.includes('"kind":"shift.step"'), 3000, 'SSE event')
  t.match(text, /^id: \d+\nevent: gateway\ndata: \{/m)
  stream.body.destroy()
})
