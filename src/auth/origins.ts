/**
 * Which browser origins may call the API: the server's own (same-origin) and
 * those of --allowed-origins. Requests without an Origin header (curl, SDKs,
 * servers) are not browsers acting for another site and pass; auth still
 * applies to them.
 */
import { ValidationError } from "../jobs/errors.ts";

/** Normalises one --allowed-origins entry to scheme://host[:port], refusing paths and wildcards. */
export function parseOrigin(value: string, field = "--allowed-origins"): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new ValidationError(field, `${JSON.stringify(value)} is not an origin like https://app.example.com`);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.pathname !== "/" || url.search || url.hash) {
    throw new ValidationError(field, `${JSON.stringify(value)} must be http(s)://host[:port] with no path`);
  }
  return url.origin;
}

export function parseOrigins(list: string, field = "--allowed-origins"): string[] {
  return list
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o.length > 0)
    .map((o) => parseOrigin(o, field));
}

/** True when a request with this Origin (and Host) header may be served. */
export function originAllowed(
  origin: string | undefined,
  host: string | undefined,
  allowed: readonly string[],
): boolean {
  if (origin === undefined) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // "null" (sandboxed frames, file://) and garbage
  }
  if (host !== undefined && url.host === host.toLowerCase()) return true;
  return allowed.includes(url.origin);
}
