/** A loopback URL where nothing listens (connections are refused). */
import { createServer } from 'node:net'

export async function closedPort (): Promise<number> {
  const srv = createServer()
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  await new Promise(resolve => srv.close(resolve))
  return port
}

export const refusedUrl = async (): Promise<string> => `http://127.0.0.1:${await closedPort()}`
