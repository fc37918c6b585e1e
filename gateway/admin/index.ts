/** The admin API; wired in only by the composition root. */
export { startAdmin, type AdminApi, type AdminServer } from './server.js'
