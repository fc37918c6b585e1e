/** The data plane: listeners, routing, balancing, forwarding. Reads the runtime; never decides health. */
export { Listener } from './listener.js'
export { createRequestHandler, type HandlerDeps, type RequestHandler } from './handler.js'
export { buildRuntime, runtimeKeys, RuntimeRoute, RuntimeUpstream, type Runtime } from './runtime.js'
export { PoolRegistry } from './pools.js'
export { DeadlineSweeper } from './deadlines.js'
export { Balancer, type Pickable } from './balancer.js'
export { classifyUpstreamError } from './upstream-errors.js'
export { problemBody, sendProblem } from './problem.js'
