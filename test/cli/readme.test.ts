/**
 * The README's quick-start curl commands, run against a real server: each
 * command's JSON body is POSTed as curl would send it, and the answer must be
 * the one printed under it. Keeps the copy-paste examples true.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";

interface Example {
  url: string;
  body: string;
  expected: unknown;
}

function readmeExamples(): Example[] {
  const readme = readFileSync(join(import.meta.dirname, "..", "..", "README.md"), "utf8");
  const quickStart = readme.slice(
    readme.indexOf("## Quick start"),
    readme.indexOf("\n## ", readme.indexOf("## Quick start") + 1),
  );
  const pattern = /curl -s (\S+) -H 'content-type: application\/json' \\\n\s+-d '([^']+)'\n# (.+)\n/g;
  return [...quickStart.matchAll(pattern)].map((m) => ({
    url: m[1] ?? "",
    body: m[2] ?? "",
    expected: JSON.parse(m[3] ?? "null"),
  }));
}

describe("README quick start", () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it("has an enqueue and a read-back curl example, and both answer what the README shows", async () => {
    const examples = readmeExamples();
    expect(examples).toHaveLength(2);
    expect(examples.map((e) => e.url)).toEqual(["http://127.0.0.1:4000/graphql", "http://127.0.0.1:4000/graphql"]);
    t = await startTestServer("sqlite");
    for (const example of examples) {
      const res = await t.post(example.body);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(example.expected);
    }
    // Run again, the enqueue is idempotent: same job, created false.
    const again = (await (await t.post(examples[0]!.body)).json()) as {
      data: { enqueueJob: { created: boolean; job: { id: string } } };
    };
    expect(again.data.enqueueJob).toEqual({ created: false, job: { id: "1", state: "QUEUED" } });
  });
});
