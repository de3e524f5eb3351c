/**
 * Whether a listen address is reachable only from this machine. Anything else
 * (0.0.0.0, ::, a LAN address, a host name other than localhost) counts as
 * reachable from elsewhere, and auth is required there by default.
 */
import { isIP } from "node:net";

export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || /^::ffff:127\./.test(h);
  return false;
}
