/** API token resolvers: thin over the token service (src/auth/token-service.ts). Admin-only by the rule table. */
import type { ApiTokenRoleResolvers } from "../__generated__/resolvers.ts";

/** Wire names (ADMIN) ↔ stored names (admin). */
export const ApiTokenRole: ApiTokenRoleResolvers = {
  VIEWER: "viewer",
  PRODUCER: "producer",
  WORKER: "worker",
  ADMIN: "admin",
};
