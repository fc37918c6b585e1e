/** The composition root. */
export { Gateway, type GatewayOptions, type Addresses } from './gateway.js'
export type { ReloadRecord, ReloadTrigger } from './reload.js'
