/** Server defaults, apart from server.ts so that parsing flags does not load Apollo. */
export const SERVER_DEFAULTS = Object.freeze({
  port: 4000,
  host: "127.0.0.1",
  maxBodyBytes: 8 * 1024 * 1024,
  shutdownGraceMs: 10_000,
});
