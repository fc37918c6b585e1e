/** Bearer-token check in constant time, so the token cannot be guessed byte by byte from timing. */
import { createHash, timingSafeEqual } from 'node:crypto'

export function bearerMatches (header: string | undefined, token: string): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false
  // Hash both sides: timingSafeEqual needs equal lengths, and hashing hides the length.
  const a = createHash('sha256').update(header.slice(7)).digest()
  const b = createHash('sha256').update(token).digest()
  return timingSafeEqual(a, b)
}
