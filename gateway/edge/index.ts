/**
 * The client side of the data plane: listeners with their limits, the
 * admission checks every request passes before routing (HTTP version, Host,
 * header count, path normalization), the connection cap, slow and
 * oversized bodies, Expect: 100-continue, and the problem documents the
 * gateway answers itself. Knows nothing of routes or upstreams.
 */
export { Listener, type RequestHandler, type UpgradeHandler } from './listener.js'
export { admitRequest, type Admitted, type Rejected } from './admit.js'
export { normalizeTarget } from './path.js'
export { ConnectionGate } from './connections.js'
export { UploadGuard, bodyLimits, type BodyLimits } from './upload-guard.js'
export { acceptBody, ClientFault, type ClientFaultSink } from './upload.js'
export { expectContinue, sendContinue } from './continue.js'
export { problemBody, sendProblem, endSocketWithProblem } from './problem.js'
