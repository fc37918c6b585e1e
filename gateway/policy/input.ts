/**
 * The bytes of a policy, before any YAML parsing: a size limit (checked on
 * the bytes, so a huge file is never parsed or even read whole) and a strict
 * UTF-8 decode that names the line and column of the first invalid byte
 * instead of silently turning it into U+FFFD. A UTF-8 byte order mark is
 * accepted and dropped.
 */
import { open } from 'node:fs/promises'
import type { PolicyIssue } from './issues.js'

/** Largest policy file accepted, in bytes (1 MiB; the shipped examples are under 20 KiB). */
export const MAX_POLICY_BYTES = 1024 * 1024

export type InputCode = 'GW_ERR_POLICY_TOO_LARGE' | 'GW_ERR_POLICY_ENCODING'

export type DecodeResult =
  | { ok: true, text: string }
  | { ok: false, code: InputCode, issues: PolicyIssue[] }

/**
 * Reads at most MAX_POLICY_BYTES + 1 bytes of `file`: enough to tell that it
 * is too large without reading the rest. Throws what `open`/`read` throw.
 */
export async function readPolicyBytes (file: string): Promise<Uint8Array> {
  const handle = await open(file, 'r')
  try {
    const buf = Buffer.alloc(MAX_POLICY_BYTES + 1)
    let n = 0
    while (n < buf.length) {
      const { bytesRead } = await handle.read(buf, n, buf.length - n, null)
      if (bytesRead === 0) break
      n += bytesRead
    }
    return buf.subarray(0, n)
  } finally {
    await handle.close()
  }
}

/** The issue for text or bytes over the limit; null when within it. */
export function sizeIssue (file: string, byteLength: number): PolicyIssue | null {
  if (byteLength <= MAX_POLICY_BYTES) return null
  return {
    file,
    path: '',
    line: 1,
    column: 1,
    message: `the policy is larger than ${MAX_POLICY_BYTES} bytes (1 MiB), the limit for a policy file; remove what is not needed (comments, unused routes) or split the routes over several gateways`
  }
}

/** Size check, then strict UTF-8 decoding of `bytes`. */
export function decodePolicyBytes (file: string, bytes: Uint8Array): DecodeResult {
  const tooLarge = sizeIssue(file, bytes.length)
  if (tooLarge !== null) return { ok: false, code: 'GW_ERR_POLICY_TOO_LARGE', issues: [tooLarge] }
  const bad = invalidUtf8Offset(bytes)
  if (bad !== -1) {
    const { line, column } = bytePosition(bytes, bad)
    const hex = (bytes[bad] as number).toString(16).toUpperCase().padStart(2, '0')
    return {
      ok: false,
      code: 'GW_ERR_POLICY_ENCODING',
      issues: [{ file, path: '', line, column, message: `not valid UTF-8: byte 0x${hex} (byte offset ${bad}) is not part of a valid UTF-8 character; save the file as UTF-8` }]
    }
  }
  // Valid by now; `fatal` keeps it honest. The decoder drops a leading BOM.
  return { ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) }
}

/**
 * Offset of the first byte that does not belong to well-formed UTF-8
 * (Unicode Table 3-7: no overlong forms, no surrogates, nothing above
 * U+10FFFF, no truncated sequence), or -1 when all of it is well formed.
 */
export function invalidUtf8Offset (b: Uint8Array): number {
  let i = 0
  while (i < b.length) {
    const c = b[i] as number
    if (c < 0x80) {
      i++
      continue
    }
    let more: number
    let lo = 0x80
    let hi = 0xBF
    if (c >= 0xC2 && c <= 0xDF) more = 1
    else if (c >= 0xE0 && c <= 0xEF) {
      more = 2
      if (c === 0xE0) lo = 0xA0
      if (c === 0xED) hi = 0x9F
    } else if (c >= 0xF0 && c <= 0xF4) {
      more = 3
      if (c === 0xF0) lo = 0x90
      if (c === 0xF4) hi = 0x8F
    } else return i
    for (let k = 1; k <= more; k++) {
      const d = b[i + k]
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xBF)) return i
    }
    i += more + 1
  }
  return -1
}

/**
 * 1-based line and column of byte `offset`. Columns count UTF-16 code units
 * of the (valid) text before it on its line, as the YAML positions do; a BOM
 * on line 1 is not counted.
 */
function bytePosition (bytes: Uint8Array, offset: number): { line: number, column: number } {
  let line = 1
  let start = 0
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0A) {
      line++
      start = i + 1
    }
  }
  if (line === 1 && bytes[0] === 0xEF && bytes[1] === 0xBB && bytes[2] === 0xBF && offset >= 3) start = 3
  const before = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes.subarray(start, offset))
  return { line, column: before.length + 1 }
}
