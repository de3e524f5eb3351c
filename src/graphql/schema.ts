/**
 * The executable schema: the SDL files of schema/ (the contract) with the
 * resolvers of resolvers/, each root field guarded by src/auth/guard.ts.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeExecutableSchema } from "@graphql-tools/schema";
import type { GraphQLSchema } from "graphql";
import { guardResolvers } from "../auth/guard.ts";
import { resolvers } from "./resolvers/index.ts";

const SCHEMA_DIR = join(dirname(fileURLToPath(import.meta.url)), "schema");

/** The SDL of the API, as one string (the files of schema/ in name order). */
export function readTypeDefs(): string {
  return readdirSync(SCHEMA_DIR)
    .filter((f) => f.endsWith(".graphql"))
    .sort()
    .map((f) => readFileSync(join(SCHEMA_DIR, f), "utf8"))
    .join("\n");
}

export function createSchema(): GraphQLSchema {
  return makeExecutableSchema({
    typeDefs: readTypeDefs(),
    // Every root field checked by src/auth/ (role and queue scope) before it runs.
    resolvers: guardResolvers(resolvers) as Parameters<typeof makeExecutableSchema>[0]["resolvers"],
    // Every schema field must have a resolver or a parent property of its name.
    resolverValidationOptions: { requireResolversToMatchSchema: "error" },
  });
}
