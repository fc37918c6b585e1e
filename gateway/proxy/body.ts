/**
 * Reading a request body into memory, bounded: for requests that may be
 * sent more than once (retries) or must be fingerprinted (idempotency keys).
 * Everything else is streamed.
 */
import { isH2 } from '../edge/h2.js'
import type { IncomingMessage } from 'node:http'

/** The whole body, or 'too-large' as soon as it passes `limit` (the rest is left unread). */
export async function readBody (req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  const h2 = isH2(req)
  return await new Promise(resolve => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (r: Buffer | 'too-large' | 'aborted'): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('close', onClose)
      req.off('aborted', onError)
      resolve(r)
    }
    const onData = (c: Buffer): void => {
      size += c.length
      if (size > limit) {
        req.pause()
        done('too-large')
      } else chunks.push(c)
    }
    const onEnd = (): void => done(Buffer.concat(chunks, size))
    const onError = (): void => done('aborted')
    const onClose = (): void => { if (!req.complete) done('aborted') }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
    // An HTTP/2 client that resets its stream mid-body: node says 'aborted', then ends the body cleanly.
    if (h2) req.on('aborted', onError)
  })
}
