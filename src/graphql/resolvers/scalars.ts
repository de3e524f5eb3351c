/**
 * The custom scalars of schema/scalars.graphql. Bad input raises a GraphQL
 * error with code BAD_USER_INPUT before any resolver runs.
 */
import { GraphQLError, GraphQLScalarType, Kind, valueFromASTUntyped } from "graphql";
import type { ValueNode } from "graphql";
import type { JsonValue } from "../../jobs/types.ts";

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

function badInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "BAD_USER_INPUT" } });
}

function parseDateTime(value: unknown): Date {
  if (typeof value !== "string" || !ISO_DATE_TIME.test(value)) {
    throw badInput(`DateTime must be an ISO-8601 date-time with a time zone, e.g. 2026-11-22T10:15:30Z`);
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw badInput(`DateTime ${JSON.stringify(value)} is not a valid instant`);
  return date;
}

export const DateTime = new GraphQLScalarType<Date, string>({
  name: "DateTime",
  serialize(value) {
    const date = value instanceof Date ? value : typeof value === "string" ? new Date(value) : null;
    if (date === null || Number.isNaN(date.getTime())) throw new Error(`DateTime cannot represent ${String(value)}`);
    return date.toISOString();
  },
  parseValue: parseDateTime,
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) throw badInput("DateTime must be a string");
    return parseDateTime(ast.value);
  },
});

export const JSONScalar = new GraphQLScalarType<JsonValue, JsonValue>({
  name: "JSON",
  serialize: (value) => value as JsonValue,
  // Size and shape limits are the job service's (it names the field on error).
  parseValue: (value) => value as JsonValue,
  parseLiteral: (ast: ValueNode, variables) => valueFromASTUntyped(ast, variables) as JsonValue,
});

function parseSafeInt(value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw badInput(`SafeInt must be a whole number from -(2^53-1) to 2^53-1, got ${JSON.stringify(value)}`);
  }
  return value;
}

export const SafeInt = new GraphQLScalarType<number, number>({
  name: "SafeInt",
  serialize: (value) => parseSafeInt(value),
  parseValue: parseSafeInt,
  parseLiteral(ast) {
    if (ast.kind !== Kind.INT) throw badInput("SafeInt must be an integer literal");
    return parseSafeInt(Number(ast.value));
  },
});
