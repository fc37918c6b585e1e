/**
 * A real HTTP/1.1 upstream whose misbehaviour can be changed while it runs.
 *
 * The gateway's tests, the README demo and the chaos drills all point the
 * gateway at these servers and then inject latency, errors, resets, hangs or
 * garbage, either in-process (`set()`) or over HTTP (`/_fault`). It is a real
 * socket server on purpose: pooling, keep-alive, parser errors and half-read
 * bodies only behave realistically over a real TCP connection.
 *
 * Special paths (path only, query ignored unless stated):
 * - `/status/<code>`: answer with that status (no body for 204/304).
 * - `/bytes/<n>`: stream n bytes with `content-length: n`.
 * - `/headers`: echo plus hop-by-hop headers the gateway must strip.
 * - `/slow-body?chunks=N&gapMs=M`: headers at once, then N chunks M ms apart.
 * - `/cut-body`: promise 100000 bytes, send 1000, destroy the socket.
 * - `/_fault`: control API (GET/POST/PUT/DELETE); never counted or faulted.
 * Everything else gets the JSON echo.
 */
import { createServer as createHttpsServer } from 'node:https'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createHash } from 'node:crypto'
import type { Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

/**
 * Misbehaviour to inject. Rates are shares in 0..1 drawn per request; they are
 * checked in the order hang, reset, garbage, error, and the first hit wins.
 * Latency (plus jitter) is waited before the headers of every other answer,
 * counted from the moment the request body has been fully read.
 */
export interface Fault {
  /** Delay before sending the response headers, in ms (default 0). */
  latencyMs?: number
  /** Extra uniform random delay in 0..jitterMs ms. */
  jitterMs?: number
  /** Share of requests answered with `errorStatus`, immediately. */
  errorRate?: number
  /** Status used by `errorRate` (default 503). */
  errorStatus?: number
  /** Share of requests whose socket is reset after the request is read, with no response. */
  resetRate?: number
  /** Share of requests never answered (socket left open until `close()`). */
  hangRate?: number
  /** Share of requests answered with bytes that are not HTTP, then socket end. */
  garbageRate?: number
}

/** One request the upstream read completely (headers and body). */
export interface ReceivedRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  /** Body length, counted while streaming (the body is never buffered). */
  bodyBytes: number
  /** Hex sha256 of the body, hashed incrementally. */
  bodySha256: string
  /** `Date.now()` when the request headers arrived. */
  at: number
}

/** A running fault upstream. */
export interface FaultUpstream {
  readonly name: string
  /** Base URL, e.g. `http://127.0.0.1:9101` (no trailing slash). */
  readonly url: string
  readonly port: number
  /**
   * Replaces the injected fault. The result is `fault` merged over the
   * baseline given at start, so `set({})` restores the baseline (not zero).
   * Throws a RangeError for invalid values or unknown keys.
   */
  set (fault: Fault): void
  /** The effective fault (baseline merged with the last `set`), a copy. */
  readonly fault: Fault
  /** Fully read requests in arrival order; only the newest `maxReceived` are kept. */
  readonly received: ReceivedRequest[]
  /**
   * Total requests received since start or `resetCounts()`, including
   * reset/hung/aborted ones. The gateway's synthetic latency probes
   * (user-agent `gateway-latency-probe`) are answered like any request, with
   * the same faults, but counted apart in `probes` and never in `received`,
   * so `count` and `received` are what clients sent.
   */
  readonly count: number
  /** Latency probes received since start or `resetCounts()`. */
  readonly probes: number
  /** Requests received but not yet answered (or torn down). */
  readonly inflight: number
  /** Clears `received` and `count`. `inflight` is a live gauge and is kept. */
  resetCounts (): void
  /**
   * Takes the upstream down like a crashed process, or brings it back on the
   * same port. Down: the port is closed (new connections are refused, so
   * nothing sent there can have been processed) and every open connection is
   * destroyed (requests on them were already received and count as such).
   * Resolves once the port is closed or listening again.
   */
  setDown (down: boolean): Promise<void>
  /** Whether the upstream is down (see setDown). */
  readonly down: boolean
  /** Stops listening and destroys every open socket, hung ones included. Idempotent. */
  close (): Promise<void>
}

/** Options of {@link startFaultUpstream}. */
export interface FaultUpstreamOptions {
  /** Shown in responses and the `x-upstream-name` header (default `upstream`). */
  name?: string
  /** Address to bind (default 127.0.0.1). */
  host?: string
  /** Port to bind (default 0 = any free port). */
  port?: number
  /** Default behaviour that `set()` merges over and `set({})` / `DELETE /_fault` return to. */
  baseline?: Fault
  /** Initial fault, merged over the baseline as by `set()`. */
  fault?: Fault
  /** Source of randomness for rates and jitter (default Math.random); inject for deterministic tests. */
  random?: () => number
  /** How many entries `received` keeps (default 10000); `count` is not capped. */
  maxReceived?: number
  /** Serve HTTPS with this certificate and key (PEM text); the url is then https://. */
  tls?: { cert: string, key: string }
}

/** The gateway's latency probes (gateway/control/latency-probes.ts) say so in their user-agent. */
const PROBE_USER_AGENT = 'gateway-latency-probe'

const FAULT_KEYS = ['latencyMs', 'jitterMs', 'errorRate', 'errorStatus', 'resetRate', 'hangRate', 'garbageRate'] as const
const RATE_KEYS = new Set<string>(['errorRate', 'resetRate', 'hangRate', 'garbageRate'])
const CHUNK = 64 * 1024
const CONTROL_BODY_LIMIT = 64 * 1024
/** What `/cut-body` promises and what it actually sends before the cut. */
const CUT_PROMISED = 100_000
const CUT_SENT = 1000

/**
 * Checks a fault and returns a clean copy (undefined keys dropped), so a typo
 * in a chaos drill fails loudly instead of silently injecting nothing.
 */
export function normalizeFault (input: unknown): Fault {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new RangeError('a fault must be a JSON object')
  }
  const out: Record<string, number> = {}
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue
    if (!(FAULT_KEYS as readonly string[]).includes(key)) {
      throw new RangeError(`unknown fault key "${key}" (known: ${FAULT_KEYS.join(', ')})`)
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new RangeError(`fault ${key} must be a non-negative number`)
    }
    if (RATE_KEYS.has(key) && value > 1) throw new RangeError(`fault ${key} is a share and must be in 0..1`)
    if (key === 'errorStatus' && (!Number.isInteger(value) || value < 200 || value > 599)) {
      throw new RangeError('fault errorStatus must be an integer status in 200..599')
    }
    out[key] = value
  }
  return out as Fault
}

/**
 * Starts a fault upstream and resolves once it is listening.
 * @throws the listen error (e.g. EADDRINUSE) if the port cannot be bound.
 */
export async function startFaultUpstream (opts: FaultUpstreamOptions = {}): Promise<FaultUpstream> {
  const name = opts.name ?? 'upstream'
  const host = opts.host ?? '127.0.0.1'
  const random = opts.random ?? Math.random
  const maxReceived = opts.maxReceived ?? 10_000
  const baseline = normalizeFault(opts.baseline ?? {})
  let fault: Fault = { ...baseline, ...normalizeFault(opts.fault ?? {}) }
  let received: ReceivedRequest[] = []
  let count = 0
  let probes = 0
  let inflight = 0
  let closing: Promise<void> | undefined
  let down = false
  /** The pending setDown, so calls apply in order. */
  let switching: Promise<void> = Promise.resolve()
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  /** Settlers of unanswered requests, so close() can zero `inflight` synchronously. */
  const unanswered = new Set<() => void>()

  const setFault = (next: Fault): void => {
    fault = { ...baseline, ...normalizeFault(next) }
  }

  /** setTimeout that close() can cancel, so a closed upstream leaves nothing pending. */
  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => { timers.delete(timer); fn() }, ms)
    timers.add(timer)
  }
  const wait = (ms: number): Promise<void> => new Promise(resolve => later(ms, resolve))

  /** Rate 1 always hits without drawing, so tests with rate 1 need no injected random. */
  const hit = (rate: number | undefined): boolean =>
    rate !== undefined && rate > 0 && (rate >= 1 || random() < rate)

  const record = (entry: ReceivedRequest): void => {
    received.push(entry)
    if (received.length > maxReceived) received.splice(0, received.length - maxReceived)
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/'
    res.setHeader('x-upstream-name', name)
    if (path === '/_fault') {
      void handleControl(req, res)
      return
    }
    void handleRequest(req, res, path)
  }
  // A test tool: slow 1 GB uploads must not be cut by Node's 300 s default.
  const server: Server = opts.tls === undefined
    ? createServer({ requestTimeout: 0 }, onRequest)
    : createHttpsServer({ requestTimeout: 0, cert: opts.tls.cert, key: opts.tls.key }, onRequest) as unknown as Server

  server.on('connection', socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })

  async function handleRequest (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const at = Date.now()
    const probe = req.headers['user-agent'] === PROBE_USER_AGENT
    if (probe) probes++
    else count++
    if (!probe) inflight++
    let answered = false
    const done = (): void => {
      if (answered) return
      answered = true
      if (!probe) inflight--
      unanswered.delete(done)
    }
    unanswered.add(done)
    // 'close' also fires when the socket dies under us (reset, cut, close()).
    res.once('finish', done)
    res.once('close', done)

    let body: { bodyBytes: number, bodySha256: string }
    try {
      body = await consumeBody(req)
    } catch {
      return // client aborted the upload; nothing left to answer
    }
    const entry: ReceivedRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      ...body,
      at
    }
    if (!probe) record(entry)

    const f = fault
    if (hit(f.hangRate)) return // left open on purpose; close() destroys it
    if (hit(f.resetRate)) {
      req.socket.resetAndDestroy()
      return
    }
    if (hit(f.garbageRate)) {
      // Written on the raw socket so no status line ever goes out.
      req.socket.end('HELLO\r\n\r\n')
      return
    }
    if (hit(f.errorRate)) {
      const status = f.errorStatus ?? 503
      sendJson(res, status, { upstream: name, status, fault: 'error' })
      return
    }
    const delay = (f.latencyMs ?? 0) + (f.jitterMs !== undefined && f.jitterMs > 0 ? random() * f.jitterMs : 0)
    if (delay > 0) await wait(delay)
    if (res.destroyed) return
    answer(req, res, path, entry)
  }

  function answer (req: IncomingMessage, res: ServerResponse, path: string, entry: ReceivedRequest): void {
    const echo = {
      upstream: name,
      method: entry.method,
      url: entry.url,
      headers: entry.headers,
      bodyBytes: entry.bodyBytes,
      bodySha256: entry.bodySha256
    }
    const status = /^\/status\/(\d{3})$/.exec(path)
    if (status?.[1] !== undefined) {
      const code = Number(status[1])
      if (code < 200 || code > 599) {
        sendJson(res, 400, { upstream: name, error: 'status must be in 200..599' })
      } else if (code === 204 || code === 304) {
        res.writeHead(code).end()
      } else {
        sendJson(res, code, { upstream: name, status: code })
      }
      return
    }
    const bytes = /^\/bytes\/(\d+)$/.exec(path)
    if (bytes?.[1] !== undefined) {
      streamBytes(res, Number(bytes[1]))
      return
    }
    if (path === '/headers') {
      sendHopByHop(res, echo)
      return
    }
    if (path === '/slow-body') {
      const query = new URL(req.url ?? '/', 'http://x').searchParams
      slowBody(res, intParam(query.get('chunks'), 5), intParam(query.get('gapMs'), 100))
      return
    }
    if (path === '/cut-body') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': CUT_PROMISED })
      res.write(Buffer.alloc(CUT_SENT, 0x78), () => res.socket?.destroy())
      return
    }
    sendJson(res, 200, echo)
  }

  function streamBytes (res: ServerResponse, total: number): void {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
    // One shared chunk: write() never mutates it, so reuse saves allocations.
    const chunk = Buffer.alloc(Math.min(CHUNK, Math.max(total, 1)), 0x78)
    let left = total
    const pump = (): void => {
      while (left > 0) {
        if (res.destroyed) return
        const n = Math.min(left, CHUNK)
        left -= n
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          res.once('drain', pump)
          return
        }
      }
      res.end()
    }
    pump()
  }

  function sendHopByHop (res: ServerResponse, echo: object): void {
    const body = JSON.stringify(echo)
    // No content-length: a declared trailer needs chunked encoding.
    res.writeHead(200, {
      'content-type': 'application/json',
      connection: 'x-custom-hop, keep-alive',
      'keep-alive': 'timeout=77',
      'x-custom-hop': '1',
      'proxy-authenticate': 'Basic',
      trailer: 'x-t',
      'x-end-to-end': 'yes',
      'set-cookie': ['a=1', 'b=2']
    })
    res.write(body)
    res.addTrailers({ 'x-t': '1' })
    res.end()
  }

  function slowBody (res: ServerResponse, chunks: number, gapMs: number): void {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.flushHeaders()
    let sent = 0
    // The gap also precedes the first chunk, so every idle interval is gapMs.
    const next = (): void => {
      if (res.destroyed) return
      if (sent >= chunks) {
        res.end()
        return
      }
      sent++
      res.write('chunk\n')
      later(gapMs, next)
    }
    if (chunks <= 0) res.end()
    else later(gapMs, next)
  }

  async function handleControl (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    if (method === 'GET' || method === 'HEAD') {
      await drain(req)
      sendJson(res, 200, { ...fault, count, inflight })
      return
    }
    if (method === 'DELETE') {
      await drain(req)
      setFault({})
      sendJson(res, 200, fault)
      return
    }
    if (method !== 'POST' && method !== 'PUT') {
      await drain(req)
      res.setHeader('allow', 'GET, HEAD, POST, PUT, DELETE')
      sendJson(res, 405, { error: `method ${method} not allowed on /_fault` })
      return
    }
    let text: string
    try {
      text = await readSmallBody(req, CONTROL_BODY_LIMIT)
    } catch (err) {
      if (!res.destroyed) sendJson(res, 413, { error: (err as Error).message })
      return
    }
    try {
      setFault(text.trim() === '' ? {} : JSON.parse(text) as unknown as Fault)
    } catch (err) {
      sendJson(res, 400, { error: (err as Error).message })
      return
    }
    sendJson(res, 200, fault)
  }

  const listen = async (on: number): Promise<void> => await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(on, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  /** Destroys every open socket, hung ones included, and settles their requests at once. */
  const dropConnections = (): void => {
    for (const socket of sockets) socket.destroy()
    // res 'close' only follows a tick later; callers expect inflight 0 at once.
    for (const done of [...unanswered]) done()
  }

  await listen(opts.port ?? 0)
  const port = (server.address() as AddressInfo).port
  const url = `${opts.tls === undefined ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${port}`

  const switchDown = async (next: boolean): Promise<void> => {
    if (closing !== undefined || next === down) return
    down = next
    if (!next) return await listen(port)
    const closed = new Promise<void>(resolve => server.close(() => resolve()))
    dropConnections()
    await closed
  }

  return {
    name,
    url,
    port,
    set: setFault,
    get fault () { return { ...fault } },
    get received () { return received },
    get count () { return count },
    get probes () { return probes },
    get inflight () { return inflight },
    resetCounts () {
      received = []
      count = 0
      probes = 0
    },
    get down () { return down },
    async setDown (next: boolean) {
      // A failed switch (the port taken meanwhile) rejects this call, not the next ones or close().
      const run = switching.then(async () => await switchDown(next))
      switching = run.catch(() => {})
      await run
    },
    close () {
      closing ??= switching.then(async () => await new Promise<void>(resolve => {
        for (const timer of timers) clearTimeout(timer)
        timers.clear()
        // Down already closed the port; close() then only has sockets to end.
        if (down) resolve()
        else server.close(() => resolve())
        // server.close() only stops accepting; hung and idle keep-alive sockets must go too.
        dropConnections()
      }))
      return closing
    }
  }
}

/** Reads a request body as a stream, counting and hashing it without keeping it. */
async function consumeBody (req: IncomingMessage): Promise<{ bodyBytes: number, bodySha256: string }> {
  const hash = createHash('sha256')
  let bodyBytes = 0
  for await (const chunk of req) {
    const buf = chunk as Buffer
    bodyBytes += buf.length
    hash.update(buf)
  }
  return { bodyBytes, bodySha256: hash.digest('hex') }
}

/** Reads and discards a body so the keep-alive connection stays usable. */
async function drain (req: IncomingMessage): Promise<void> {
  try {
    for await (const _ of req) { /* discard */ }
  } catch { /* aborted: nothing to answer anyway */ }
}

/**
 * Buffers a small control body. Past the limit it keeps reading but discards,
 * so the 413 can still go out on an intact connection.
 */
function readSmallBody (req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) parts.push(chunk)
    })
    req.once('end', () => {
      if (size > limit) reject(new Error(`control body larger than ${limit} bytes`))
      else resolve(Buffer.concat(parts).toString('utf8'))
    })
    req.once('error', reject)
  })
}

function sendJson (res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body)
  })
  res.end(body)
}

function intParam (value: string | null, dflt: number): number {
  const n = value === null ? NaN : Number(value)
  return Number.isInteger(n) && n >= 0 ? n : dflt
}
