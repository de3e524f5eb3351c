import { afterEach, describe, expect, it } from "vitest";
import { EnqueueJobDocument, JobDocument } from "../../src/client/__generated__/graphql.ts";
import { BACKENDS } from "../helpers/backends.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";

describe.each(BACKENDS)("smoke on %s", (dialect) => {
  let t: TestServer;
  afterEach(async () => t?.close());
  it("enqueues and reads back", async () => {
    t = await startTestServer(dialect, { logger: (await import("pino")).pino({ level: "error" }) });
    const { enqueueJob } = await t.data(EnqueueJobDocument, { input: { queue: "q", payload: { a: 1 } } });
    expect(enqueueJob.created).toBe(true);
    const { job } = await t.data(JobDocument, { id: enqueueJob.job.id });
    expect(job.payload).toEqual({ a: 1 });
    const err = await t.error(JobDocument, { id: "999" });
    expect(err.extensions?.code).toBe("NOT_FOUND");
  });
});
