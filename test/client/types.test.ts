/**
 * The SDK's types come from GraphQL Code Generator, and misuse fails
 * type-checking:
 * - expectTypeOf pins each method to its generated operation types (checked
 *   by `npm run typecheck`, which CI runs; a hand-widened type breaks it);
 * - @ts-expect-error lines must stay errors (an unused one is itself an error);
 * - fixtures/misuse.ts, compiled here with the project's compiler options,
 *   must fail with exactly the errors it marks.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, expectTypeOf, it } from "vitest";
import { JobwireClient } from "../../src/client/index.ts";
import type {
  ClaimJobsMutation,
  ClaimJobsMutationVariables,
  CompleteJobsMutation,
  EnqueueJobInput,
  EnqueueJobMutation,
  JobEventFieldsFragment,
  JobFieldsFragment,
  JobState,
  LiveSubscription,
  QueueQuery,
  WorkerJob,
} from "../../src/client/index.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

describe("SDK types", () => {
  it("are the generated operation types", () => {
    type C = JobwireClient;
    expectTypeOf<Parameters<C["enqueueJob"]>[0]>().toEqualTypeOf<EnqueueJobInput>();
    expectTypeOf<Awaited<ReturnType<C["enqueueJob"]>>>().toEqualTypeOf<EnqueueJobMutation["enqueueJob"]>();
    expectTypeOf<Parameters<C["claimJobs"]>[0]>().toEqualTypeOf<ClaimJobsMutationVariables>();
    expectTypeOf<Awaited<ReturnType<C["claimJobs"]>>>().toEqualTypeOf<ClaimJobsMutation["claimJobs"]>();
    expectTypeOf<Awaited<ReturnType<C["completeJobs"]>>>().toEqualTypeOf<CompleteJobsMutation["completeJobs"]>();
    expectTypeOf<Awaited<ReturnType<C["job"]>>>().toEqualTypeOf<JobFieldsFragment>();
    expectTypeOf<Awaited<ReturnType<C["queue"]>>>().toEqualTypeOf<QueueQuery["queue"]>();
    expectTypeOf<ReturnType<C["watchJobEvents"]>>().toEqualTypeOf<LiveSubscription<JobEventFieldsFragment>>();
    expectTypeOf<JobFieldsFragment["state"]>().toEqualTypeOf<JobState>();
    expectTypeOf<JobState>().toEqualTypeOf<"SCHEDULED" | "QUEUED" | "RUNNING" | "SUCCEEDED" | "FAILED" | "CANCELLED">();
    expectTypeOf<WorkerJob["leaseToken"]>().toEqualTypeOf<string>();
  });

  it("reject a misused field name (these lines must stay type errors)", () => {
    const client = new JobwireClient({ url: "http://127.0.0.1:1/graphql" });
    const misuse = async () => {
      // @ts-expect-error queueName is not an input field of enqueueJob
      await client.enqueueJob({ queue: "q", queueName: "q" });
      const { job } = await client.enqueueJob({ queue: "q" });
      // @ts-expect-error the generated Job type calls it queueName
      return job.queue;
    };
    expect(typeof misuse).toBe("function");
  });

  it("fail to compile fixtures/misuse.ts with exactly the errors it marks", () => {
    const configPath = `${ROOT}tsconfig.json`;
    const config = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p));
    const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
    const fixture = `${ROOT}test/client/fixtures/misuse.ts`;
    const program = ts.createProgram([fixture], { ...options, noEmit: true });
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file?.fileName === fixture)
      .map((d) => {
        const { line } = ts.getLineAndCharacterOfPosition(d.file as ts.SourceFile, d.start ?? 0);
        return { line: line + 1, code: d.code, message: ts.flattenDiagnosticMessageText(d.messageText, "\n") };
      });
    const marked = readFileSync(fixture, "utf8")
      .split("\n")
      .map((text, i) => ({ line: i + 1, text }))
      .filter(({ text }) => text.includes("// MISUSE"))
      .map(({ line }) => line);
    expect(marked).toHaveLength(4);
    expect(diagnostics.map((d) => d.line).sort((a, b) => a - b)).toEqual(marked);
    const text = diagnostics.map((d) => d.message).join("\n");
    expect(text).toMatch(/'queueName' does not exist in type 'EnqueueJobInput'/);
    expect(text).toMatch(/Property 'queue' does not exist/);
    expect(text).toMatch(/Property 'waiting' does not exist/);
    expect(text).toMatch(/'worker' does not exist in type .*Did you mean to write 'workerId'/);
  }, 60_000);
});
