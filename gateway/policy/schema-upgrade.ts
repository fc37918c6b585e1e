/**
 * Per-route protocol upgrades: WebSocket tunnels. On by default, as in
 * Traefik and HAProxy (Envoy needs `upgrade_configs`), with an idle timeout
 * like HAProxy's `timeout tunnel`.
 */
import { Type } from '@sinclair/typebox'
import { strict, Duration } from './schema-kit.js'

export const WebSocketSchema = strict({
  enabled: Type.Optional(Type.Boolean({
    description: 'Tunnel WebSocket upgrade requests (Upgrade: websocket) to an upstream of this route. When false they are answered 501 GW_ERR_UPGRADE_NOT_SUPPORTED. @default true'
  })),
  idleTimeout: Type.Optional(Duration('Close a tunnel (both connections) when no byte has passed in either direction for this long.', '1h'))
}, { description: 'WebSocket pass-through: the handshake goes to an upstream picked like any request (breakers and health respected, connect and responseHeaders timeouts apply), then bytes are relayed both ways until either side closes. See docs/websocket.md.' })
