/**
 * Test certificates made with the openssl command line (P-256 keys, fast):
 * a CA, certificates it signs for given names, an expired one, and one
 * from another CA (untrusted). Files in a temporary folder removed at
 * teardown; each returns its PEM text and file paths.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Teardown } from './harness.js'

export interface Pem { readonly cert: string, readonly key: string, readonly certFile: string, readonly keyFile: string }

export interface Certs {
  readonly dir: string
  readonly ca: Pem
  /** A certificate signed by the CA for `sans` (e.g. ['DNS:localhost', 'IP:127.0.0.1']). */
  issue: (name: string, sans: readonly string[], opts?: { days?: number, client?: boolean }) => Pem
  /** A certificate from a CA nobody trusts. */
  foreign: (name: string, sans: readonly string[]) => Pem
}

const ssl = (cwd: string, args: readonly string[]): void => { execFileSync('openssl', args, { cwd, stdio: 'ignore' }) }
const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

function selfSigned (dir: string, name: string): Pem {
  ssl(dir, ['req', '-x509', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`])
  return read(dir, name)
}

function read (dir: string, name: string): Pem {
  const certFile = join(dir, `${name}.crt`)
  const keyFile = join(dir, `${name}.key`)
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile }
}

function signed (dir: string, ca: string, name: string, sans: readonly string[], days: number, client: boolean): Pem {
  ssl(dir, ['req', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`])
  writeFileSync(join(dir, `${name}.ext`), [
    sans.length > 0 ? `subjectAltName=${sans.join(',')}` : '',
    `extendedKeyUsage=${client ? 'clientAuth' : 'serverAuth'}`
  ].filter(l => l !== '').join('\n') + '\n')
  ssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', String(days), '-extfile', `${name}.ext`])
  return read(dir, name)
}

export function makeCerts (t: Teardown): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'gw-certs-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const ca = selfSigned(dir, 'ca')
  let other = false
  return {
    dir,
    ca,
    issue: (name, sans, opts = {}) => signed(dir, 'ca', name, sans, opts.days ?? 1, opts.client ?? false),
    foreign: (name, sans) => {
      if (!other) { selfSigned(dir, 'other-ca'); other = true }
      return signed(dir, 'other-ca', name, sans, 1, false)
    }
  }
}
