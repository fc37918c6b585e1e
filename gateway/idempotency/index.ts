/** Idempotency keys: the store contract, its in-memory and Redis stores, the request fingerprint, and keys derived from the request (dedupe windows). */
export type { StoredResponse, Outcome, BeginResult, IdempotencyStore } from './types.js'
export { MemoryIdempotencyStore, type MemoryIdempotencyStoreOptions } from './memory-store.js'
export { RedisIdempotencyStore, type RedisIdempotencyStoreOptions } from './redis-store.js'
export { StoreUnavailableError } from './errors.js'
export { fingerprint } from './fingerprint.js'
export { deriveKey, describe as describeKeyPart, DERIVED_PREFIX, type Derived, type RequestFacts } from './derived-key.js'
