/**
 * Edge settings of a listener (what a client may send, and how slowly) and
 * a route's request body limit. Defaults follow HAProxy, NGINX, Envoy and
 * Apache's mod_reqtimeout; each one says where it comes from.
 */
import { Type } from '@sinclair/typebox'
import { strict, Duration, Size, Count } from './schema-kit.js'

export const PathsSchema = strict({
  slashes: Type.Optional(Type.Unsafe<'keep' | 'merge' | 'reject'>({
    type: 'string',
    enum: ['keep', 'merge', 'reject'],
    description: 'Repeated slashes in the path (/a//b): merge them into one (NGINX merge_slashes), keep them as sent, or reject the request with 400. Merging happens before route matching, and the merged path is forwarded. @default merge',
    'x-hint': 'use "merge", "keep" or "reject"'
  })),
  escapedSlashes: Type.Optional(Type.Unsafe<'keep' | 'reject' | 'decode'>({
    type: 'string',
    enum: ['keep', 'reject', 'decode'],
    description: 'Encoded slashes and backslashes (%2F, %5C, and a raw \\) in the path (Envoy path_with_escaped_slashes_action): reject the request with 400, keep them as sent (the upstream may decode them into a path separator the routes never saw), or decode them to "/" before dot-segments are removed and routes match. @default reject',
    'x-hint': 'use "reject", "keep" or "decode"'
  }))
}, { description: 'How request paths are normalized before routes match them. Dot-segments (/./, /../, also written %2e) are always removed (RFC 3986 §5.2.4) and a path that climbs above the root is answered 400; the normalized path is what routes see and what is forwarded.' })

export const ListenerTimeoutsSchema = strict({
  requestHeaders: Type.Optional(Duration('Time a client has to send the complete request line and headers, from the start of the request (slowloris guard; HAProxy timeout http-request). Answered 408.', '10s')),
  requestBody: Type.Optional(Duration('Time a client has to send the request body, extended by 1 s for every limits.minBodyRate bytes received (Apache mod_reqtimeout body=20,MinRate=500). A body trickled slower is answered 408. Counts only what the client sends: a slow upstream never trips it.', '20s')),
  bodyIdle: Type.Optional(Duration('Longest pause between two pieces of a request body while the gateway is ready to read (NGINX client_body_timeout). Answered 408.', '30s')),
  keepAlive: Type.Optional(Duration('How long an idle keep-alive client connection is kept open between requests.', '30s'))
}, { description: 'Client-side timeouts of the listener. None of them covers the upstream: a slow payment upstream is bounded by the route timeouts only.' })

export const ListenerLimitsSchema = strict({
  maxConnections: Type.Optional(Count('Most client connections open at once. At the limit, a new connection first closes the oldest idle keep-alive connection; when none is idle it is answered 503 GW_ERR_TOO_MANY_CONNECTIONS with Retry-After and closed. @default 10000', 1, 1_000_000)),
  maxHeaderCount: Type.Optional(Count('Most request header fields (Envoy max_request_headers_count). More is answered 431, never forwarded truncated. @default 100', 1, 10_000)),
  maxHeaderSize: Type.Optional(Size('Most bytes of request line and headers together (Envoy max_request_headers_kb). More is answered 431.', '32kb')),
  minBodyRate: Type.Optional(Size('Bytes per second that extend timeouts.requestBody by one second each (mod_reqtimeout MinRate).', '500b')),
  maxConcurrentStreams: Type.Optional(Count('HTTP/2: most requests at once on one client connection (SETTINGS_MAX_CONCURRENT_STREAMS; nginx 128, Go 250). @default 100', 1, 10_000))
}, { description: 'Limits on client connections and request heads.' })

export const RouteLimitsSchema = strict({
  maxBodySize: Type.Optional(Size('Largest request body the route takes. A larger Content-Length is answered 413 before anything is read or sent upstream; a chunked body that grows past it is cut and answered 413, and the upstream never receives a complete request.', '10mb'))
}, { description: 'Request limits of the route.' })
