/**
 * Attempt's notion of "the request may have reached the upstream" must be one
 * definition, used both to classify a failure and to tell the idempotency
 * store whether it may release a key.
 */
import t from 'tap'
import { Attempt, type AttemptOwner } from '../gateway/proxy/attempt.js'
import type { RuntimeUpstream } from '../gateway/proxy/runtime.js'
import type { AttemptFailure } from '../gateway/delivery/failure.js'
import { ManualClock } from '../gateway/core/clock.js'

/** An upstream whose pool runs `script` against the attempt instead of the network. */
function fakeUpstream (script: (h: { onConnect: (abort: () => void) => void, onError: (e: Error) => void }) => void, reports: string[] = []): RuntimeUpstream {
  return {
    name: 'fake',
    sink: { begin: () => { reports.push('begin'); return null }, end: (_a: unknown, _t: unknown, outcome: number, sample: boolean) => { reports.push(`end ${outcome} ${sample}`) } },
    pool: { dispatch: (_opts: unknown, h: Parameters<typeof script>[0]) => { script(h); return true } }
  } as unknown as RuntimeUpstream
}

function owner (failures: AttemptFailure[]): AttemptOwner {
  return { onAttemptHeaders: () => true, onAttemptData: () => true, onAttemptEnd () {}, onAttemptError: (_a, f) => { failures.push(f) } }
}

const reset = (): Error => Object.assign(new Error('socket reset while writing'), { code: 'ECONNRESET' })
const start = (a: Attempt): void => a.start({ path: '/', method: 'POST', headers: [], body: Buffer.from('x'), headersTimeoutMs: 1000, bodyIdleMs: 1000 })

t.test('regression: failing after the request was handed to a connection is maybe processed, and the attempt says it was connected', async t => {
  const failures: AttemptFailure[] = []
  const a = new Attempt(new ManualClock(), fakeUpstream(h => { h.onConnect(() => {}); h.onError(reset()) }), owner(failures))
  start(a)
  t.equal(failures[0]?.delivery, 'maybe-processed')
  t.equal(a.connected, true, 'the same answer the idempotency store gets (it must not release the key)')
})

t.test('failing before any connection is never sent, and not connected', async t => {
  const failures: AttemptFailure[] = []
  const refused = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })
  const a = new Attempt(new ManualClock(), fakeUpstream(h => { h.onError(refused) }), owner(failures))
  start(a)
  t.equal(failures[0]?.delivery, 'never-sent')
  t.equal(a.connected, false)
})

t.test('the attempt reports into its outcome sink once at begin and once at the end, even when discarded after failing', async t => {
  const reports: string[] = []
  const failures: AttemptFailure[] = []
  const a = new Attempt(new ManualClock(), fakeUpstream(h => { h.onConnect(() => {}); h.onError(reset()) }, reports), owner(failures))
  start(a)
  a.discard()
  t.equal(reports.length, 2, 'begin and one end')
  t.equal(reports[0], 'begin')
  t.match(reports[1], /^end \d+ true$/, 'the reset is a sampled outcome')
  t.equal(failures.length, 1)
})
