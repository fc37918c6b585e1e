/** What became of one attempt to (re)load the policy: kept by the composition root, shown by the admin API. */
import type { PolicyIssue } from './issues.js'

export type ReloadTrigger = 'start' | 'file' | 'signal' | 'admin'

export interface ReloadRecord {
  readonly at: string
  readonly trigger: ReloadTrigger
  readonly ok: boolean
  /** False when the file's content was unchanged (nothing swapped). */
  readonly changed: boolean
  readonly version: string | null
  readonly code?: string
  readonly issues?: readonly PolicyIssue[]
}
