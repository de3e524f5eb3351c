/**
 * @jobwire/client as a user gets it: `npm pack` of packages/client (in a copy
 * of the repository, see pack.ts), installed into an empty project, then used
 * from plain ESM JavaScript against a live server and type-checked from
 * TypeScript with the repository's tsc.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { REPO, copyRepository, emptyProject, installTarball, makeTemp, pack, removeTemp, run } from "./pack.ts";
import type { RunResult } from "./pack.ts";

const TSC = join(REPO, "node_modules", "typescript", "bin", "tsc");

let temp: string | undefined;
let copy: string;
let project: string;
let packed: { tarball: string; files: string[]; output: string };
let installed: RunResult;
let server: TestServer | undefined;

beforeAll(async () => {
  temp = makeTemp("client-package");
  copy = join(temp, "repo");
  project = join(temp, "consumer");
  copyRepository(copy);
  packed = await pack(copy, "./packages/client", join(temp, "out"));
  emptyProject(project);
  installed = await installTarball(project, packed.tarball, 180_000);
  if (installed.code !== 0)
    throw new Error(`npm install of the tarball exited ${installed.code}:\n${installed.output}`);
  server = await startTestServer("sqlite");
}, 300_000);

afterAll(async () => {
  await server?.close();
  removeTemp(temp);
});

describe("the @jobwire/client tarball", () => {
  it("holds the Node build, the browser build and declarations only", () => {
    expect(packed.files).toEqual(
      expect.arrayContaining([
        "dist/index.js",
        "dist/browser.js",
        "dist/types/client/index.d.ts",
        "LICENSE",
        "README.md",
      ]),
    );
    expect(
      packed.files.filter((f) => !f.startsWith("dist/") && !["LICENSE", "README.md", "package.json"].includes(f)),
    ).toEqual([]);
    expect(packed.files.filter((f) => f.startsWith("dist/") && !/\.(js|d\.ts)$/.test(f))).toEqual([]);
  });

  it("installs in at most 10 packages, with no warning", async () => {
    expect(installed.output).not.toMatch(/npm warn/i);
    const ls = await run("npm", ["ls", "--all", "--parseable"], { cwd: project });
    expect(ls.code).toBe(0);
    // The first line is the project itself.
    const packages = ls.stdout.split("\n").filter(Boolean).slice(1);
    expect(packages.length).toBeLessThanOrEqual(10);
    expect(packages.map((p) => p.slice(p.lastIndexOf("node_modules/") + 13)).sort()).toEqual(
      [
        "@graphql-typed-document-node/core",
        "@jobwire/client",
        "@opentelemetry/api",
        "graphql",
        "graphql-ws",
        "ws",
      ].sort(),
    );
  });

  it("enqueues a job from plain ESM and runs it with the Worker against a live server", async () => {
    const app = join(project, "app.mjs");
    writeFileSync(
      app,
      `import { JobwireClient, Worker } from "@jobwire/client";
const url = process.argv[2];
const client = new JobwireClient({ url });
const { job, created } = await client.enqueueJob({ queue: "packaged", payload: { n: 21 } });
const worker = new Worker({
  url,
  queues: ["packaged"],
  handler: async (leased) => ({ doubled: leased.payload.n * 2 }),
});
worker.start();
const states = [];
for await (const event of client.watchJobEvents({ jobId: job.id })) {
  states.push(event.toState);
  if (event.toState === "SUCCEEDED" || event.toState === "FAILED") break;
}
const done = await client.job(job.id);
await worker.stop();
await client.close();
console.log(JSON.stringify({ created, states, state: done.state, result: done.result }));
`,
    );
    const res = await run(process.execPath, [app, (server as TestServer).url], { cwd: project, timeoutMs: 60_000 });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({
      created: true,
      states: ["QUEUED", "RUNNING", "SUCCEEDED"],
      state: "SUCCEEDED",
      result: { doubled: 42 },
    });
  });

  it("passes `npm publish --dry-run` without a warning about the package, as a public scoped package", async () => {
    const res = await run("npm", ["publish", "--dry-run", "./packages/client"], { cwd: copy, timeoutMs: 180_000 });
    expect(res.code).toBe(0);
    expect(res.output).toMatch(/with tag latest and public access \(dry-run\)/);
    // The one warning left is about the publisher: nobody is logged in here.
    const warnings = res.output
      .split("\n")
      .filter((line) => /\bwarn/i.test(line))
      .filter((line) => !/requires you to be logged in/.test(line));
    expect(warnings).toEqual([]);
  });

  describe("from TypeScript", () => {
    const MISUSE = "  // @ts-expect-error queue is a string";
    const program = (directive: boolean) => `import { JobwireClient, Worker } from "@jobwire/client";
import type { Backoff, Job, JobEvent, JobState, LeasedJob, Queue, QueueSettings, QueueStats } from "@jobwire/client";

const client = new JobwireClient({ url: "http://127.0.0.1:4000/graphql" });

export async function enqueue(): Promise<Job> {
  const { job } = await client.enqueueJob({ queue: "email", payload: { to: "a@example.com" } });
  const state: JobState = job.state;
  void state;
  return job;
}

export async function misuse(): Promise<void> {
${directive ? `${MISUSE}\n` : ""}  await client.enqueueJob({ queue: 42 });
}

export const worker = new Worker({ client, queues: ["email"], handler: async (job) => ({ id: job.id }) });
export type Friendly = [Backoff, JobEvent, LeasedJob["leaseToken"], Queue, QueueSettings, QueueStats];
`;
    const typecheck = async (resolution: "NodeNext" | "Bundler", directive: boolean) => {
      const dir = join(project, `ts-${resolution}-${directive ? "with" : "without"}`);
      emptyProject(dir);
      writeFileSync(join(dir, "index.ts"), program(directive));
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2022",
            module: resolution === "NodeNext" ? "NodeNext" : "ESNext",
            moduleResolution: resolution,
            strict: true,
            noEmit: true,
            // The consumer's @types/node; skipLibCheck stays off, so the
            // package's declarations are checked too.
            typeRoots: [join(REPO, "node_modules", "@types")],
            types: ["node"],
          },
          files: ["index.ts"],
        }),
      );
      // node_modules of the consumer project one folder up resolve @jobwire/client.
      return run(process.execPath, [TSC, "-p", dir], { cwd: dir, timeoutMs: 120_000 });
    };

    it("type-checks with moduleResolution NodeNext, the misuse being an error", async () => {
      const ok = await typecheck("NodeNext", true);
      expect(ok.stdout).toBe("");
      expect(ok.code).toBe(0);
      const misused = await typecheck("NodeNext", false);
      expect(misused.code).not.toBe(0);
      expect(misused.stdout).toMatch(
        /index\.ts\(14,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/,
      );
      expect(misused.stdout.trim().split("\n")).toHaveLength(1);
    });

    it("type-checks with moduleResolution Bundler", async () => {
      const ok = await typecheck("Bundler", true);
      expect(ok.stdout).toBe("");
      expect(ok.code).toBe(0);
    });
  });
});
