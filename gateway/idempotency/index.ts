/** Idempotency keys: the store contract, its in-memory and Redis stores and the request fingerprint. */
export type { StoredResponse, Outcome, BeginResult, IdempotencyStore } from './types.js'
export { MemoryIdempotencyStore, type MemoryIdempotencyStoreOptions } from './memory-store.js'
export { RedisIdempotencyStore, type RedisIdempotencyStoreOptions } from './redis-store.js'
export { StoreUnavailableError } from './errors.js'
export { fingerprint } from './fingerprint.js'
