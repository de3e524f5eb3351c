/**
 * The custom scalars of schema/scalars.graphql. A bad variable value is
 * refused before any resolver runs (BAD_USER_INPUT, HTTP 400); a bad literal
 * in the query text fails validation (GRAPHQL_VALIDATION_FAILED), with its
 * location.
 */
import { GraphQLError, GraphQLScalarType, Kind, valueFromASTUntyped } from "graphql";
import type { ValueNode } from "graphql";
import type { JsonValue } from "../../jobs/types.ts";
import * as v from "../../jobs/validate.ts";

function badInput(message: string, ast?: ValueNode): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "BAD_USER_INPUT" }, ...(ast && { nodes: ast }) });
}

const ISO_HINT = "DateTime must be an ISO-8601 date-time with a time zone, e.g. 2026-11-22T10:15:30Z";

function parseDateTime(value: unknown, ast?: ValueNode): Date {
  if (typeof value !== "string" || !v.ISO_8601.test(value)) throw badInput(ISO_HINT, ast);
  try {
    // The service's own check: a real calendar instant (no February 31st or
    // 24:00, which Date would silently roll over into the next month or day).
    return v.date(value, "DateTime");
  } catch {
    throw badInput(`DateTime ${JSON.stringify(value)} is not a valid instant`, ast);
  }
}

export const DateTime = new GraphQLScalarType<Date, string>({
  name: "DateTime",
  serialize(value) {
    const date = value instanceof Date ? value : typeof value === "string" ? new Date(value) : null;
    if (date === null || Number.isNaN(date.getTime())) throw new Error(`DateTime cannot represent ${String(value)}`);
    return date.toISOString();
  },
  parseValue: (value) => parseDateTime(value),
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) throw badInput("DateTime must be a string", ast);
    return parseDateTime(ast.value, ast);
  },
});

export const JSONScalar = new GraphQLScalarType<JsonValue, JsonValue>({
  name: "JSON",
  serialize: (value) => value as JsonValue,
  // Size and shape limits are the job service's (it names the field on error).
  parseValue: (value) => value as JsonValue,
  parseLiteral: (ast: ValueNode, variables) => valueFromASTUntyped(ast, variables) as JsonValue,
});

function parseSafeInt(value: unknown, ast?: ValueNode): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw badInput(`SafeInt must be a whole number from -(2^53-1) to 2^53-1, got ${JSON.stringify(value)}`, ast);
  }
  return value;
}

export const SafeInt = new GraphQLScalarType<number, number>({
  name: "SafeInt",
  serialize: (value) => parseSafeInt(value),
  parseValue: (value) => parseSafeInt(value),
  parseLiteral(ast) {
    if (ast.kind !== Kind.INT) throw badInput("SafeInt must be an integer literal", ast);
    return parseSafeInt(Number(ast.value), ast);
  },
});
