/**
 * A self-signed certificate for 127.0.0.1 and localhost, made by the
 * openssl command line into `dir`, for the drills and benches that run over
 * TLS (the certificate is its own trust anchor: give its file as `ca`).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface SelfSigned { readonly cert: string, readonly key: string, readonly certFile: string, readonly keyFile: string }

export function selfSignedLocalhost (dir: string, name = 'localhost'): SelfSigned {
  const certFile = join(dir, `${name}.crt`)
  const keyFile = join(dir, `${name}.key`)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' })
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile }
}
