/**
 * The SDK against a server with --auth required: the `token` option is sent
 * on HTTP and in connection_init; without it calls fail with UNAUTHENTICATED,
 * and a live subscription whose token is revoked ends with FORBIDDEN instead
 * of retrying forever.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JobwireClient } from "../../src/client/index.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { BACKENDS } from "../helpers/backends.ts";

describe.each(BACKENDS)("JobwireClient with an API token on %s", (dialect) => {
  let t: TestServer;
  const clients: JobwireClient[] = [];
  const client = (token?: string) => {
    const c = new JobwireClient({ url: t.url, retryDelayMs: () => 20, ...(token !== undefined && { token }) });
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    t = await startTestServer(dialect, { auth: "required" });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await t.close();
  });

  it("sends the token over HTTP and WebSocket; without one it gets UNAUTHENTICATED", async () => {
    const { token } = await t.server.services.tokens.create({ name: "app", role: "producer" });
    const app = client(token);
    const events = await app.watchJobChanges({});
    const { job } = await app.enqueueJob({ queue: "mail" });
    const first = await events.next();
    expect(first.value).toMatchObject({ jobId: job.id, type: "ENQUEUED" });
    events.close();

    await expect(client().enqueueJob({ queue: "mail" })).rejects.toMatchObject({
      code: "UNAUTHENTICATED",
      status: 401,
    });
    await expect(client("jw_wrong").lastEventId()).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
  });

  it("a live subscription ends with FORBIDDEN once its token is revoked", async () => {
    const { token } = await t.server.services.tokens.create({ name: "dash", role: "viewer" });
    const dash = client(token);
    const { job } = await client(
      (await t.server.services.tokens.create({ name: "p", role: "producer" })).token,
    ).enqueueJob({ queue: "mail" });
    const events = dash.watchJobEvents({ jobId: job.id });
    expect((await events.next()).value).toMatchObject({ seq: 1 });
    await t.server.services.tokens.revoke("dash");
    await expect(events.next()).rejects.toMatchObject({ code: "FORBIDDEN" });
  });
});
