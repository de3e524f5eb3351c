import { describe, expect, it } from "vitest";
import * as v from "../../src/jobs/validate.ts";

describe("date validation", () => {
  it("accepts ISO-8601 date-times with a zone", () => {
    expect(v.date("2026-01-31T12:00:00Z", "d").toISOString()).toBe("2026-01-31T12:00:00.000Z");
    expect(v.date("2026-01-31T12:00+02:00", "d").toISOString()).toBe("2026-01-31T10:00:00.000Z");
    expect(v.date("2024-02-29T00:00:00.123Z", "d").getTime()).toBe(Date.parse("2024-02-29T00:00:00.123Z"));
  });

  it.each([
    "2026-02-31T10:00:00Z",
    "2025-02-29T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T10:60:00Z",
    "2026-01-01",
    "1700000000",
    "",
  ])("refuses %j", (input) => {
    expect(() => v.date(input, "runAt")).toThrow(expect.objectContaining({ code: "BAD_USER_INPUT", field: "runAt" }));
  });

  it("refuses invalid Date objects", () => {
    expect(() => v.date(new Date("nope"), "runAt")).toThrow(/invalid Date/);
  });
});

describe("job id validation", () => {
  it("accepts 64-bit decimal ids only", () => {
    expect(v.jobId("9223372036854775807")).toBe("9223372036854775807");
    for (const bad of ["0", "-1", "01", "9223372036854775808", "1e3", "abc", ""]) {
      expect(() => v.jobId(bad), bad).toThrow(expect.objectContaining({ code: "BAD_USER_INPUT" }));
    }
  });
});
