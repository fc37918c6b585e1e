/** Idempotency keys: the store contract, its in-memory store and the request fingerprint. */
export type { StoredResponse, Outcome, BeginResult, IdempotencyStore } from './types.js'
export { MemoryIdempotencyStore, type MemoryIdempotencyStoreOptions } from './memory-store.js'
export { fingerprint } from './fingerprint.js'
