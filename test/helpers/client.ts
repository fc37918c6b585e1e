/**
 * node:http client for what undici refuses to send (hop-by-hop request
 * headers such as keep-alive), buffering the (small) response.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'

export interface NodeResponse { statusCode: number, headers: IncomingHttpHeaders, rawHeaders: string[], body: string }

export async function nodeRequest (url: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<NodeResponse> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}
