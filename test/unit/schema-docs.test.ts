/**
 * The schema is the API's documentation: every type, field, argument, input
 * field and enum value of src/graphql/schema/*.graphql has a description.
 */
import { buildSchema, isEnumType, isInputObjectType, isInterfaceType, isObjectType } from "graphql";
import { describe, expect, it } from "vitest";
import { readTypeDefs } from "../../src/graphql/schema.ts";

function undocumented(sdl: string): string[] {
  const schema = buildSchema(sdl);
  const missing: string[] = [];
  const needs = (what: string, description: string | null | undefined) => {
    if (!description || description.trim().length < 3) missing.push(what);
  };
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith("__") || ["String", "Int", "Float", "Boolean", "ID"].includes(type.name)) continue;
    needs(type.name, type.description);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        needs(`${type.name}.${field.name}`, field.description);
        for (const arg of field.args) needs(`${type.name}.${field.name}(${arg.name})`, arg.description);
      }
    }
    if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) needs(`${type.name}.${field.name}`, field.description);
    }
    if (isEnumType(type)) {
      for (const value of type.getValues()) needs(`${type.name}.${value.name}`, value.description);
    }
  }
  return missing;
}

describe("schema documentation", () => {
  it("describes every type, field, argument, input field and enum value", () => {
    expect(undocumented(readTypeDefs())).toEqual([]);
  });

  it("reports what lacks a description", () => {
    const sdl = `${readTypeDefs()}
      extend type Query { "documented" a(x: Int): Int, b: Int }
      enum Extra { "documented" ONE TWO }`;
    expect(undocumented(sdl)).toEqual(["Query.a(x)", "Query.b", "Extra", "Extra.TWO"]);
  });
});
