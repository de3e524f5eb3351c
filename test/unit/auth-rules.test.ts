/**
 * The guard's rule table covers every root field of the schema (so a new
 * field cannot be left unprotected), and the small parsers of src/auth/.
 */
import { buildSchema } from "graphql";
import { describe, expect, it } from "vitest";
import { guardResolvers, unguardedRootFields } from "../../src/auth/guard.ts";
import { isLoopbackHost } from "../../src/auth/loopback.ts";
import { originAllowed, parseOrigin } from "../../src/auth/origins.ts";
import { parseQueuePatterns, queueMatcher } from "../../src/auth/queue-patterns.ts";
import { ROLES, roleAllows } from "../../src/auth/roles.ts";
import { parseBearer, parseDuration } from "../../src/auth/token-service.ts";
import { ValidationError } from "../../src/jobs/errors.ts";
import { createSchema, readTypeDefs } from "../../src/graphql/schema.ts";

describe("auth rule table", () => {
  it("has a rule for every root Query, Mutation and Subscription field", () => {
    expect(unguardedRootFields(createSchema())).toEqual([]);
  });

  it("reports a root field without a rule, and the guard refuses to wrap it", () => {
    const extended = buildSchema(`${readTypeDefs()}\nextend type Mutation { "x" dropEverything: Boolean! }`);
    expect(unguardedRootFields(extended)).toEqual(["Mutation.dropEverything"]);
    expect(() => guardResolvers({ Mutation: { dropEverything: () => true } })).toThrow(
      /Mutation.dropEverything has no rule/,
    );
  });

  it("orders the roles: each may do what the ones before it may", () => {
    expect(ROLES.filter((r) => roleAllows(r, "read"))).toEqual(["viewer", "producer", "worker", "admin"]);
    expect(ROLES.filter((r) => roleAllows(r, "cancel"))).toEqual(["producer", "worker", "admin"]);
    expect(ROLES.filter((r) => roleAllows(r, "claim"))).toEqual(["worker", "admin"]);
    expect(ROLES.filter((r) => roleAllows(r, "tokenAdmin"))).toEqual(["admin"]);
  });
});

describe("queue patterns", () => {
  it("match exact names and * as any run of characters", () => {
    const inScope = queueMatcher(["email", "reports.*", "*-eu"]);
    if (!inScope) throw new Error("expected a matcher");
    expect(["email", "reports.daily", "reports.eu.weekly", "billing-eu"].every(inScope)).toBe(true);
    expect(["emails", "reports", "xreports.daily", "eu"].some(inScope)).toBe(false);
    expect(queueMatcher([])).toBeNull();
  });

  it("refuse characters a queue name cannot have", () => {
    expect(parseQueuePatterns([" a ", "a", "b.*"])).toEqual(["a", "b.*"]);
    expect(() => parseQueuePatterns(["a b"])).toThrow(ValidationError);
    expect(() => parseQueuePatterns([""])).toThrow(ValidationError);
    expect(() => parseQueuePatterns(["(.*)"])).toThrow(ValidationError);
  });
});

describe("auth parsers", () => {
  it("parseBearer tells a missing header from a malformed one", () => {
    expect(parseBearer(undefined)).toBeUndefined();
    expect(parseBearer("")).toBeUndefined();
    expect(parseBearer("Bearer jw_abc")).toBe("jw_abc");
    expect(parseBearer("bearer   jw_abc ")).toBe("jw_abc");
    expect(parseBearer("Basic dXNlcg==")).toBeNull();
    expect(parseBearer("Bearer a b")).toBeNull();
  });

  it("parseDuration reads 90s, 45m, 12h, 30d, 2w and plain seconds", () => {
    expect([parseDuration("90s"), parseDuration("45m"), parseDuration("12h")]).toEqual([90, 2700, 43_200]);
    expect([parseDuration("30d"), parseDuration("2w"), parseDuration("15")]).toEqual([2_592_000, 1_209_600, 15]);
    for (const bad of ["0", "-1d", "1y", "d", "99999d"]) expect(() => parseDuration(bad)).toThrow(ValidationError);
  });

  it("isLoopbackHost: only addresses unreachable from other machines", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"]) {
      expect(isLoopbackHost(h), h).toBe(true);
    }
    for (const h of ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "example.com", "localhost.example.com"]) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
  });

  it("origins: absent and same-origin pass, listed ones pass, others and 'null' do not", () => {
    const allowed = [parseOrigin("https://app.example.com/")];
    expect(originAllowed(undefined, "127.0.0.1:4000", allowed)).toBe(true);
    expect(originAllowed("http://127.0.0.1:4000", "127.0.0.1:4000", allowed)).toBe(true);
    expect(originAllowed("https://app.example.com", "api.example.com", allowed)).toBe(true);
    expect(originAllowed("https://app.example.com:8443", "api.example.com", allowed)).toBe(false);
    expect(originAllowed("https://evil.example", "api.example.com", allowed)).toBe(false);
    expect(originAllowed("null", "api.example.com", allowed)).toBe(false);
    expect(() => parseOrigin("https://app.example.com/path")).toThrow(ValidationError);
    expect(() => parseOrigin("*")).toThrow(ValidationError);
  });
});
