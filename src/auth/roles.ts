/**
 * Roles and the actions they allow. The roles are ordered: each one may do
 * everything the roles before it may (viewer < producer < worker < admin),
 * always limited to its token's queue patterns (queue-patterns.ts).
 */

export const ROLES = ["viewer", "producer", "worker", "admin"] as const;
export type Role = (typeof ROLES)[number];

/**
 * What a root field does, for the rule table (rules.ts). Why actions and not
 * roles per field: a new field is classified by what it does, and the role
 * table below stays the one place that says who may do it.
 */
export const ACTION_ROLE = Object.freeze({
  read: "viewer",
  enqueue: "producer",
  cancel: "producer",
  retry: "producer",
  reschedule: "producer",
  claim: "worker",
  heartbeat: "worker",
  complete: "worker",
  fail: "worker",
  release: "worker",
  queueAdmin: "admin",
  tokenAdmin: "admin",
} as const satisfies Record<string, Role>);

export type Action = keyof typeof ACTION_ROLE;

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

/** True when `role` may perform `action` (queue scope aside). */
export function roleAllows(role: Role, action: Action): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(ACTION_ROLE[action]);
}
