/**
 * Every error the gateway makes, in one table (fastify's lib/errors.js idea).
 *
 * Each entry has a stable `code` (`GW_ERR_<AREA>_<WHAT>`), the HTTP status a
 * client sees when it ends a request, and a one-line "how to solve". The table
 * is mirrored in docs/errors.md; test/errors-doc.test.ts fails when the two differ.
 */

export interface ErrorSpec {
  readonly code: string
  readonly status: number
  readonly title: string
  readonly howToSolve: string
}

function spec (code: string, status: number, title: string, howToSolve: string): ErrorSpec {
  return Object.freeze({ code, status, title, howToSolve })
}

export const ERRORS = Object.freeze({
  ROUTE_NOT_FOUND: spec('GW_ERR_ROUTE_NOT_FOUND', 404, 'No route matches this request',
    'Add a route whose match (pathPrefix, host, methods, headers) covers the request, or fix the request URL.'),
  NO_HEALTHY_UPSTREAM: spec('GW_ERR_NO_HEALTHY_UPSTREAM', 503, 'No upstream is available for this route',
    'Every upstream of the route is drained (weight 0) or unavailable. Restore an upstream or add a backup.'),
  UPSTREAM_TIMEOUT: spec('GW_ERR_UPSTREAM_TIMEOUT', 504, 'The upstream did not answer in time',
    'The upstream exceeded the route timeout (responseHeaders, bodyIdle or total). Check the upstream, or raise the route timeouts.'),
  UPSTREAM_CONNECT: spec('GW_ERR_UPSTREAM_CONNECT', 502, 'Could not connect to the upstream',
    'The connection was refused, timed out or the host did not resolve. Check that the upstream is running and its URL in the policy.'),
  UPSTREAM_TLS: spec('GW_ERR_UPSTREAM_TLS', 502, 'TLS with the upstream failed',
    'The TLS handshake with an https:// upstream failed: its certificate is not signed by a trusted CA (untrusted), has expired or is not yet valid, does not name the upstream\'s host (hostname mismatch), or the two sides could not agree (handshake failure, including an upstream that wants a client certificate). The detail says which. Nothing was sent, so the request may be retried elsewhere. Check the upstream\'s certificate and the upstream\'s tls block (docs/upstream-tls.md).'),
  UPSTREAM_RESET: spec('GW_ERR_UPSTREAM_RESET', 502, 'The upstream closed the connection',
    'The upstream reset or closed the connection before the response was complete. Check the upstream logs.'),
  UPSTREAM_PROTOCOL: spec('GW_ERR_UPSTREAM_PROTOCOL', 502, 'The upstream sent an invalid HTTP response',
    'The upstream answered with something that is not valid HTTP/1.1. Check that the URL points at an HTTP server (not TLS, not another protocol).'),
  METHOD_NOT_SUPPORTED: spec('GW_ERR_METHOD_NOT_SUPPORTED', 501, 'The gateway does not support this method',
    'CONNECT (a forward-proxy tunnel) is not supported: the gateway is a reverse proxy. Send plain HTTP requests (or a WebSocket upgrade) to a route, or use a forward proxy for tunnels.'),
  UPGRADE_NOT_SUPPORTED: spec('GW_ERR_UPGRADE_NOT_SUPPORTED', 501, 'This protocol upgrade is not supported',
    'Only WebSocket upgrades (Upgrade: websocket) are tunneled, and only on routes where websocket.enabled is not false. Drop the Upgrade header (h2c: speak HTTP/1.1), or enable websocket on the route.'),
  BAD_REQUEST: spec('GW_ERR_BAD_REQUEST', 400, 'The request could not be read',
    'The client sent a malformed request (bad header, bad body framing). Fix the client.'),
  HEADERS_TOO_LARGE: spec('GW_ERR_HEADERS_TOO_LARGE', 431, 'Request headers too large',
    'The request headers exceed the listener limits (limits.maxHeaderCount, 100 by default; limits.maxHeaderSize, 32kb by default). Send fewer or smaller headers, or raise the limits.'),
  BODY_TOO_LARGE: spec('GW_ERR_BODY_TOO_LARGE', 413, 'Request body too large for this route',
    'The body is larger than the route limits.maxBodySize, or a keyed request body exceeds idempotency.maxBodySize (keyed requests are fingerprinted whole). Send a smaller body or raise the limit.'),
  PATH_INVALID: spec('GW_ERR_PATH_INVALID', 400, 'The request path is not acceptable',
    'The path climbs above the root (/../), has a malformed %-escape, or holds an encoded slash or backslash (%2F, %5C) or a double slash that the listener is set to reject. Send a normalized path.'),
  HOST_INVALID: spec('GW_ERR_HOST_INVALID', 400, 'Missing, repeated or malformed Host header',
    'Send exactly one Host header holding a host name or address and an optional port, with no spaces, quotes or control characters.'),
  HTTP_VERSION_NOT_SUPPORTED: spec('GW_ERR_HTTP_VERSION_NOT_SUPPORTED', 505, 'HTTP version not supported',
    'The listener speaks HTTP/1.0 and HTTP/1.1. Send an HTTP/1.1 request line (HTTP/2 needs TLS with ALPN, not offered yet).'),
  REQUEST_TIMEOUT: spec('GW_ERR_REQUEST_TIMEOUT', 408, 'The client sent its request too slowly',
    'The request headers or body did not arrive within the listener limits (timeouts.requestHeaders, timeouts.bodyIdle, timeouts.request). Send the request at once, or raise the listener limits.'),
  RATE_LIMITED: spec('GW_ERR_RATE_LIMITED', 429, 'Too many requests for this key',
    'The request went over one of the route\'s rate limits (the RateLimit-Policy header names it, with its quota and window). Wait the Retry-After delay; the RateLimit header says how soon the quota is whole again (see docs/overload.md).'),
  TENANT_BUSY: spec('GW_ERR_TENANT_BUSY', 429, 'This tenant has too many requests in flight',
    'The tenant named by the request\'s tenant header already had the route\'s bulkheads.perTenant.maxConcurrent requests in flight: each tenant gets a share, so one tenant\'s burst cannot take the route from the others. Retry after the Retry-After delay, or send fewer requests at once (see docs/overload.md).'),
  OVERLOADED: spec('GW_ERR_OVERLOADED', 503, 'The route is at its concurrency limit',
    'The route had admission.maxConcurrent requests in flight and its wait queue was full, or this request waited admission.queueTimeout without a slot. Retry after the Retry-After delay; if it happens under normal load, raise the limits (see docs/overload.md).'),
  SHED: spec('GW_ERR_SHED', 503, 'The gateway is shedding lower-priority traffic',
    'The gateway had its priority\'s share of overload.maxConcurrent requests in flight: lower priorities are refused first so that higher ones keep their capacity. Retry after the Retry-After delay (see docs/overload.md).'),
  TOO_MANY_CONNECTIONS: spec('GW_ERR_TOO_MANY_CONNECTIONS', 503, 'The listener has too many client connections',
    'The listener is at limits.maxConnections with no idle connection to close. Retry after the Retry-After delay, reuse keep-alive connections, or raise the limit.'),
  IDEMPOTENCY_KEY_INVALID: spec('GW_ERR_IDEMPOTENCY_KEY_INVALID', 400, 'Invalid idempotency key',
    'Send a key of 1 to 255 visible ASCII characters (a UUID is a good choice).'),
  IDEMPOTENCY_KEY_PARTS_MISSING: spec('GW_ERR_IDEMPOTENCY_KEY_PARTS_MISSING', 400, 'The dedupe key cannot be derived from this request',
    'The route derives its dedupe key from parts of the request (idempotency.keyFrom) and refuses requests without them (keyMissing: reject). The detail names the part that is absent or empty, or says the body is not JSON; send it, or ask for keyMissing: forward.'),
  IDEMPOTENCY_MISMATCH: spec('GW_ERR_IDEMPOTENCY_MISMATCH', 422, 'Idempotency key reused for a different request',
    'The key was first used with another method, path or body. Use a new key for a new request.'),
  IDEMPOTENCY_IN_FLIGHT: spec('GW_ERR_IDEMPOTENCY_IN_FLIGHT', 409, 'A request with this idempotency key is still in progress',
    'The first request with this key has not finished yet. Retry later with the same key to get its outcome.'),
  IDEMPOTENCY_OUTCOME_UNKNOWN: spec('GW_ERR_IDEMPOTENCY_OUTCOME_UNKNOWN', 409, 'The outcome of the first request with this key is unknown',
    'It may have been processed upstream but no answer came back, so it is not sent again. Check the payment status with the upstream before using a new key.'),
  IDEMPOTENCY_STORE_UNAVAILABLE: spec('GW_ERR_IDEMPOTENCY_STORE_UNAVAILABLE', 503, 'The idempotency store is unavailable',
    'The shared idempotency store (Redis) did not answer in time, so the keyed request was not sent rather than risk running it twice. Retry later with the same key; check that Redis is running and reachable from the gateway.'),
  INTERNAL: spec('GW_ERR_INTERNAL', 500, 'Unexpected gateway error',
    'A bug in the gateway. The log line with the same request id has the details; please report it.'),
  POLICY_INVALID: spec('GW_ERR_POLICY_INVALID', 422, 'The policy file is invalid',
    'Fix every listed mistake (each names the file, path and line) and reload. The previous policy keeps serving.'),
  POLICY_UNREADABLE: spec('GW_ERR_POLICY_UNREADABLE', 422, 'The policy file could not be read',
    'Check the path and permissions of the policy file. The previous policy keeps serving.'),
  POLICY_STATIC_CHANGED: spec('GW_ERR_POLICY_STATIC_CHANGED', 422, 'Listener or admin settings changed in a reload',
    'listeners and admin are bound at start-up. Restore them in the file to reload the rest, or restart the gateway to apply them.'),
  POLICY_TOO_LARGE: spec('GW_ERR_POLICY_TOO_LARGE', 422, 'The policy file is too large',
    'A policy file may hold at most 1 MiB (1048576 bytes). Remove what is not needed (comments, unused routes). The previous policy keeps serving.'),
  POLICY_ENCODING: spec('GW_ERR_POLICY_ENCODING', 422, 'The policy file is not valid UTF-8',
    'Save the file as UTF-8 (a byte order mark is fine); the message names the line and column of the first invalid byte. The previous policy keeps serving.'),
  POLICY_ALIASES: spec('GW_ERR_POLICY_ALIASES', 422, 'YAML aliases in the policy file expand too much or do not resolve',
    'An anchor may be expanded at most 100 times (nested expansions multiply), and every alias needs an anchor before it, outside itself. Write the values out or use fewer aliases. The previous policy keeps serving.'),
  ADMIN_UNAUTHORIZED: spec('GW_ERR_ADMIN_UNAUTHORIZED', 401, 'Admin API token missing or wrong',
    'Send "Authorization: Bearer <token>" with the token named by admin.tokenEnv.'),
  ADMIN_NOT_FOUND: spec('GW_ERR_ADMIN_NOT_FOUND', 404, 'No such admin endpoint',
    'See the admin API section of the README for the endpoints.'),
  ADMIN_OVERRIDE_INVALID: spec('GW_ERR_ADMIN_OVERRIDE_INVALID', 400, 'The override cannot be applied',
    'The detail says why: send { kind: pin|drain|breaker|pause, route, upstream (drain, breaker), share (pin), state (breaker: open|closed), reason, ttl (e.g. 10m, at most 24h) } for a route and upstream of the running policy (see docs/overrides.md).')
} satisfies Record<string, ErrorSpec>)

export type ErrorName = keyof typeof ERRORS
