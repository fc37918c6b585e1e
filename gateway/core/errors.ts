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
  UPSTREAM_RESET: spec('GW_ERR_UPSTREAM_RESET', 502, 'The upstream closed the connection',
    'The upstream reset or closed the connection before the response was complete. Check the upstream logs.'),
  UPSTREAM_PROTOCOL: spec('GW_ERR_UPSTREAM_PROTOCOL', 502, 'The upstream sent an invalid HTTP response',
    'The upstream answered with something that is not valid HTTP/1.1. Check that the URL points at an HTTP server (not TLS, not another protocol).'),
  BAD_REQUEST: spec('GW_ERR_BAD_REQUEST', 400, 'The request could not be read',
    'The client sent a malformed request (bad header, bad body framing). Fix the client.'),
  HEADERS_TOO_LARGE: spec('GW_ERR_HEADERS_TOO_LARGE', 431, 'Request headers too large',
    'The request headers exceed the listener limit (16 KiB by default, Node.js --max-http-header-size). Send fewer or smaller headers.'),
  BODY_TOO_LARGE: spec('GW_ERR_BODY_TOO_LARGE', 413, 'Request body too large for this route',
    'Keyed requests are fingerprinted whole: their body must fit idempotency.maxBodySize. Send a smaller body or raise the limit.'),
  IDEMPOTENCY_KEY_INVALID: spec('GW_ERR_IDEMPOTENCY_KEY_INVALID', 400, 'Invalid idempotency key',
    'Send a key of 1 to 255 visible ASCII characters (a UUID is a good choice).'),
  IDEMPOTENCY_MISMATCH: spec('GW_ERR_IDEMPOTENCY_MISMATCH', 422, 'Idempotency key reused for a different request',
    'The key was first used with another method, path or body. Use a new key for a new request.'),
  IDEMPOTENCY_IN_FLIGHT: spec('GW_ERR_IDEMPOTENCY_IN_FLIGHT', 409, 'A request with this idempotency key is still in progress',
    'The first request with this key has not finished yet. Retry later with the same key to get its outcome.'),
  IDEMPOTENCY_OUTCOME_UNKNOWN: spec('GW_ERR_IDEMPOTENCY_OUTCOME_UNKNOWN', 409, 'The outcome of the first request with this key is unknown',
    'It may have been processed upstream but no answer came back, so it is not sent again. Check the payment status with the upstream before using a new key.'),
  INTERNAL: spec('GW_ERR_INTERNAL', 500, 'Unexpected gateway error',
    'A bug in the gateway. The log line with the same request id has the details; please report it.'),
  POLICY_INVALID: spec('GW_ERR_POLICY_INVALID', 422, 'The policy file is invalid',
    'Fix every listed mistake (each names the file, path and line) and reload. The previous policy keeps serving.'),
  POLICY_UNREADABLE: spec('GW_ERR_POLICY_UNREADABLE', 422, 'The policy file could not be read',
    'Check the path and permissions of the policy file. The previous policy keeps serving.'),
  POLICY_STATIC_CHANGED: spec('GW_ERR_POLICY_STATIC_CHANGED', 422, 'Listener or admin settings changed in a reload',
    'listeners and admin are bound at start-up. Restore them in the file to reload the rest, or restart the gateway to apply them.'),
  ADMIN_UNAUTHORIZED: spec('GW_ERR_ADMIN_UNAUTHORIZED', 401, 'Admin API token missing or wrong',
    'Send "Authorization: Bearer <token>" with the token named by admin.tokenEnv.'),
  ADMIN_NOT_FOUND: spec('GW_ERR_ADMIN_NOT_FOUND', 404, 'No such admin endpoint',
    'See the admin API section of the README for the endpoints.')
} satisfies Record<string, ErrorSpec>)

export type ErrorName = keyof typeof ERRORS
