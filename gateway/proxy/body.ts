/**
 * Reading a request body into memory, bounded: for requests that may be
 * sent more than once (retries) or must be fingerprinted (idempotency keys).
 * Everything else is streamed.
 */
import type { IncomingMessage } from 'node:http'

/** The whole body, or 'too-large' as soon as it passes `limit` (the rest is left unread). */
export async function readBody (req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  return await new Promise(resolve => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (r: Buffer | 'too-large' | 'aborted'): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('close', onClose)
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
  })
}
