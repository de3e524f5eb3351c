/** Server defaults, apart from server.ts so that parsing flags does not load Apollo. */
export const SERVER_DEFAULTS = Object.freeze({
  port: 4000,
  host: "127.0.0.1",
  maxBodyBytes: 8 * 1024 * 1024,
  shutdownGraceMs: 10_000,
  /** graphql-ws: time to send connection_init. */
  wsInitTimeoutMs: 3_000,
  /** graphql-ws: ping interval (a client that misses one pong is dropped). */
  wsKeepAliveMs: 12_000,
  subscriptionReadGraceMs: 1_000,
  /** Live events a subscription may hold unsent. */
  subscriptionBuffer: 1_000,
  /** WebSocket connections open at once, in total (handshakes beyond: HTTP 503). */
  maxConnections: 10_000,
  /** WebSocket connections open at once from one remote address (beyond: HTTP 429). */
  maxConnectionsPerIp: 1_000,
  /** Subscriptions running at once on one WebSocket (beyond: TOO_MANY_SUBSCRIPTIONS). */
  maxSubscriptionsPerSocket: 100,
});
