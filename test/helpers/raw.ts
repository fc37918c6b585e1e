/**
 * Raw-socket helpers for edge tests: a client that sends exact bytes, and
 * an upstream that records the exact request heads it receives (what a
 * hostile request turned into after the gateway) and answers each with 200.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'
import type { Teardown } from './harness.js'

/** Sends `bytes` on a new connection; resolves with everything received until the server closes or `waitMs` passes. */
export async function rawExchange (port: number, bytes: string | Buffer, waitMs = 2000): Promise<string> {
  return await new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    let got = ''
    const timer = setTimeout(() => { s.destroy(); resolve(got) }, waitMs)
    s.on('data', d => { got += d.toString('latin1') })
    s.on('close', () => { clearTimeout(timer); resolve(got) })
    s.on('error', err => { clearTimeout(timer); if (got === '') reject(err); else resolve(got) })
    s.write(bytes)
  })
}

/** Status code of the first response in raw response text (0 if none). */
export function statusOf (raw: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw)
  return m === null ? 0 : Number(m[1])
}

/** The JSON body of a raw, content-length framed problem response. */
export function problemOf (raw: string): { code?: string, detail?: string } {
  const i = raw.indexOf('\r\n\r\n')
  try { return JSON.parse(raw.slice(i + 4)) as { code?: string, detail?: string } } catch { return {} }
}

export interface RawUpstream {
  readonly url: string
  /** Each request head as received (request line + headers), in order. */
  readonly heads: string[]
  /** Request lines only. */
  readonly lines: () => string[]
}

/**
 * Answers every request `200 ok` (keep-alive). `interim` is written before
 * the final answer (e.g. an unsolicited "HTTP/1.1 100 Continue\r\n\r\n").
 */
export async function rawUpstream (t: Teardown, opts: { interim?: string } = {}): Promise<RawUpstream> {
  const heads: string[] = []
  const sockets = new Set<Socket>()
  const srv: Server = createServer(s => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let buf = Buffer.alloc(0)
    let need = -1
    s.on('data', d => {
      buf = Buffer.concat([buf, d])
      for (;;) {
        if (need === -1) {
          const end = buf.indexOf('\r\n\r\n')
          if (end === -1) return
          const head = buf.subarray(0, end).toString('latin1')
          heads.push(head)
          const cl = /\r\ncontent-length: *(\d+)/i.exec(head)
          need = cl === null ? 0 : Number(cl[1])
          buf = buf.subarray(end + 4)
          if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
            const stop = buf.indexOf('0\r\n\r\n')
            if (stop === -1) { need = -2; return }
            buf = buf.subarray(stop + 5)
            need = 0
          }
        }
        if (need === -2) {
          const stop = buf.indexOf('0\r\n\r\n')
          if (stop === -1) return
          buf = buf.subarray(stop + 5)
          need = 0
        }
        if (buf.length < need) return
        buf = buf.subarray(need)
        need = -1
        if (opts.interim !== undefined) s.write(opts.interim)
        s.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok')
      }
    })
  })
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise(resolve => srv.close(resolve))
  })
  const port = (srv.address() as { port: number }).port
  return { url: `http://127.0.0.1:${port}`, heads, lines: () => heads.map(h => h.slice(0, h.indexOf('\r\n'))) }
}
