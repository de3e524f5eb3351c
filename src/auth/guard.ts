/**
 * The one place that checks every operation: wraps each root resolver of
 * Query, Mutation and Subscription (and each subscription's `subscribe`) so
 * that, before it runs, the caller's role allows the field's action and every
 * queue the call touches is in the token's scope (rules.ts); then runs it with
 * the token name as the actor (actor.ts). Subscription items of queues outside
 * the scope are dropped before they are executed, per subscriber.
 *
 * Refusals are FORBIDDEN, never NOT_FOUND: job ids are sequential and queue
 * names are not secrets, so hiding existence would protect nothing and would
 * make a misconfigured token look like missing data.
 *
 * Cost: a token without queue patterns costs one role comparison per call; a
 * scoped one also reads the queue of the jobs a job-id call names (one batched
 * read per call).
 */
import type { GraphQLFieldResolver, GraphQLSchema } from "graphql";
import { ForbiddenError, ValidationError } from "../jobs/errors.ts";
import type { GraphQLContext } from "../graphql/context.ts";
import { runAsActor } from "./actor.ts";
import { ACTION_ROLE, roleAllows } from "./roles.ts";
import { ROOT_RULES } from "./rules.ts";
import type { Lookup, Rule } from "./rules.ts";
import type { Principal } from "./token-service.ts";

type RootType = keyof typeof ROOT_RULES;
type AnyResolver = GraphQLFieldResolver<unknown, GraphQLContext, Record<string, unknown>>;
type ResolverMap = Record<string, Record<string, unknown>>;

function lookupFor(ctx: GraphQLContext): Lookup {
  return {
    async queuesOfJobs(ids) {
      const valid = ids.filter((id): id is string => typeof id === "string");
      let jobs;
      try {
        jobs = await ctx.jobs.findJobs(valid);
      } catch (e) {
        // A malformed id: the resolver reports it (BAD_USER_INPUT) with its field.
        if (e instanceof ValidationError) return [];
        throw e;
      }
      return [...new Set(jobs.map((j) => j.queue))];
    },
  };
}

/** Throws FORBIDDEN unless `principal` may make this call. */
export async function authorize(
  rule: Rule<never>,
  field: string,
  args: unknown,
  principal: Principal,
  ctx: GraphQLContext,
): Promise<void> {
  if (!roleAllows(principal.role, rule.action)) {
    const needed = ACTION_ROLE[rule.action];
    throw new ForbiddenError(
      `${field} needs a token with the ${needed} role (or above); this one is ${principal.role}`,
      {
        role: principal.role,
        requiredRole: needed,
      },
    );
  }
  const inScope = principal.inScope;
  if (inScope === null) return;
  const target = await rule.target(args as never, lookupFor(ctx));
  if (target === "nothing") return;
  if (target === "everything") {
    throw new ForbiddenError(
      `${field} reaches every queue, but this token is limited to ${principal.queues.join(", ")}` +
        (field === "jobs" ? " (pass filter.queue)" : ""),
      { queues: principal.queues },
    );
  }
  const outside = target.queues.find((q) => !inScope(q));
  if (outside !== undefined) {
    throw new ForbiddenError(`queue ${outside} is outside this token's queues (${principal.queues.join(", ")})`, {
      queue: outside,
    });
  }
}

function filterItems(source: AsyncIterator<unknown>, keep: (item: unknown) => boolean): AsyncIterableIterator<unknown> {
  const iterator: AsyncIterableIterator<unknown> = {
    async next() {
      for (;;) {
        const item = await source.next();
        if (item.done || keep(item.value)) return item;
      }
    },
    async return() {
      await source.return?.();
      return { value: undefined, done: true };
    },
    async throw(error?: unknown) {
      await source.return?.();
      throw error;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

function guardField(type: RootType, field: string, rule: Rule<never>, resolver: unknown): unknown {
  const name = `${type}.${field}`;
  if (type === "Subscription") {
    const { subscribe, ...rest } = resolver as { subscribe: AnyResolver };
    return {
      ...rest,
      subscribe: async (parent: unknown, args: Record<string, unknown>, ctx: GraphQLContext, info: never) => {
        const principal = ctx.principal;
        await authorize(rule, field, args, principal, ctx);
        const stream = (await subscribe(parent, args, ctx, info)) as AsyncIterator<unknown>;
        const inScope = principal.inScope;
        const itemQueue = rule.itemQueue;
        if (inScope === null || !itemQueue) return stream;
        return filterItems(stream, (item) => inScope(itemQueue(item)));
      },
    };
  }
  if (typeof resolver !== "function") throw new Error(`guard: ${name} has no resolver function`);
  const resolve = resolver as AnyResolver;
  return async (parent: unknown, args: Record<string, unknown>, ctx: GraphQLContext, info: never) => {
    const principal = ctx.principal;
    await authorize(rule, field, args, principal, ctx);
    const result: unknown = await runAsActor(principal.name, () => resolve(parent, args, ctx, info));
    return rule.narrow && principal.inScope ? rule.narrow(result, principal.inScope) : result;
  };
}

/**
 * The resolver map with every root field guarded. Throws when a root resolver
 * has no rule, so an unguarded field cannot reach a running server.
 */
export function guardResolvers<R extends object>(resolvers: R): R {
  const map = resolvers as unknown as ResolverMap;
  const out: ResolverMap = { ...map };
  for (const type of Object.keys(ROOT_RULES) as RootType[]) {
    const fields = map[type];
    if (!fields) continue;
    const rules = ROOT_RULES[type] as Record<string, Rule<never>>;
    const guarded: Record<string, unknown> = {};
    for (const [field, resolver] of Object.entries(fields)) {
      const rule = rules[field];
      if (!rule) throw new Error(`guard: ${type}.${field} has no rule in src/auth/rules.ts`);
      guarded[field] = guardField(type, field, rule, resolver);
    }
    out[type] = guarded;
  }
  return out as unknown as R;
}

/** Root fields of `schema` without a rule (the unit test expects none). */
export function unguardedRootFields(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  for (const type of Object.keys(ROOT_RULES) as RootType[]) {
    const object = schema.getType(type);
    if (!object || !("getFields" in object)) continue;
    const rules = ROOT_RULES[type] as Record<string, Rule<never>>;
    for (const field of Object.keys(object.getFields())) if (!rules[field]) missing.push(`${type}.${field}`);
  }
  return missing;
}
