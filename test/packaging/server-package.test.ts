/**
 * The server package as a user gets it: `npm pack` of the repository (in a
 * copy, see pack.ts), installed into an empty project with
 * `npm install ./jobwire-x.tgz`, then run with npx. Slow: the install compiles
 * better-sqlite3 (~1m40s on Node 20, twice that on 24, which also builds the
 * Node-API alias), so it happens once, in beforeAll.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServeProcess } from "../helpers/serve-process.ts";
import {
  CONSUMER_ALLOW_SCRIPTS,
  REPO,
  cleanEnv,
  copyRepository,
  emptyProject,
  installTarball,
  makeTemp,
  pack,
  removeTemp,
  run,
} from "./pack.ts";
import type { RunResult } from "./pack.ts";

const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;

let temp: string | undefined;
let copy: string;
let project: string;
let packed: { tarball: string; files: string[]; output: string };
let installed: RunResult;

beforeAll(async () => {
  temp = makeTemp("server-package");
  copy = join(temp, "repo");
  project = join(temp, "consumer");
  copyRepository(copy);
  packed = await pack(copy, ".", join(temp, "out"));
  emptyProject(project, CONSUMER_ALLOW_SCRIPTS);
  installed = await installTarball(project, packed.tarball);
  if (installed.code !== 0)
    throw new Error(`npm install of the tarball exited ${installed.code}:\n${installed.output}`);
}, 900_000);

afterAll(() => removeTemp(temp));

describe("the server tarball", () => {
  it("holds the compiled server, the client build, migrations, LICENSE and README, and no tests or benchmarks", () => {
    const { files } = packed;
    expect(files).toContain("dist/src/cli.js");
    expect(files).toContain("dist/client/index.js");
    expect(files).toContain("dist/client/browser.js");
    expect(files).toContain("dist/client/types/client/index.d.ts");
    expect(files).toContain("bin/jobwire.js");
    expect(files).toContain("prisma/schema.prisma");
    expect(files.some((f) => f.startsWith("prisma/sqlite/migrations/") && f.endsWith("/migration.sql"))).toBe(true);
    expect(files.some((f) => f.startsWith("prisma/postgres/migrations/") && f.endsWith("/migration.sql"))).toBe(true);
    expect(files).toEqual(expect.arrayContaining(["LICENSE", "README.md", "package.json"]));
    const unexpected = files.filter(
      (f) => !/^(dist\/|bin\/|prisma\/)/.test(f) && !["LICENSE", "README.md", "package.json"].includes(f),
    );
    expect(unexpected).toEqual([]);
    expect(files.filter((f) => /(^|\/)(test|bench|\.ci)\//.test(f) || /\.test\.[jt]s$/.test(f))).toEqual([]);
    // No TypeScript sources and no Prisma client: the package runs compiled JavaScript only.
    expect(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
    expect(files.filter((f) => f.includes("__generated__/sqlite") || f.includes("__generated__/postgres"))).toEqual([]);
  });

  it("ships a manifest without the repository's postinstall (no code generation in the consumer's install)", () => {
    const manifest = JSON.parse(readFileSync(join(project, "node_modules", "jobwire", "package.json"), "utf8")) as {
      scripts?: Record<string, string>;
      exports: Record<string, unknown>;
    };
    expect(manifest.scripts?.postinstall).toBeUndefined();
    expect(manifest.exports["./client"]).toMatchObject({ types: expect.stringMatching(/^\.\/dist\/client\//) });
    // The repository's own manifest came back after packing.
    expect(JSON.parse(readFileSync(join(copy, "package.json"), "utf8"))).toMatchObject({
      scripts: { postinstall: expect.any(String) },
    });
    expect(existsSync(join(copy, "package.json.repo"))).toBe(false);
  });

  it("installs with no engine warning, no allowScripts warning, and none of the development tools", () => {
    expect(installed.output).not.toMatch(/EBADENGINE/);
    expect(installed.output).not.toMatch(/allowScripts|install-scripts/);
    expect(installed.output).not.toMatch(/prisma generate|Generated Prisma/i);
    for (const tool of ["prisma", "@prisma/client", "@prisma/engines", "esbuild", "tsx", "typescript", "vitest"]) {
      expect(existsSync(join(project, "node_modules", tool)), tool).toBe(false);
    }
    expect(existsSync(join(project, "node_modules", "@escape.tech"))).toBe(false);
  });

  it("answers `npx jobwire --version` with the package's version", async () => {
    const res = await run("npx", ["--no-install", "jobwire", "--version"], { cwd: project, timeoutMs: 60_000 });
    expect(res.stderr).toBe("");
    expect(res.stdout).toBe(`${VERSION}\n`);
    expect(res.code).toBe(0);
  });

  it("serves with the installed `jobwire serve`: /healthz answers and a job goes in over GraphQL", async () => {
    // The command npx runs (node_modules/.bin/jobwire), started directly: npx
    // does not pass SIGTERM on to it (seen here: npx died, the server lived on).
    const server = await startServeProcess(
      ["--database", `file:${join(temp as string, "consumer.db")}`],
      60_000,
      {},
      {
        command: join(project, "node_modules", ".bin", "jobwire"),
        args: [],
        cwd: project,
        env: cleanEnv(),
      },
    );
    try {
      const origin = new URL(server.url).origin;
      const health = await fetch(`${origin}/healthz`);
      expect(health.status).toBe(200);
      const ready = await fetch(`${origin}/readyz`);
      expect(ready.status).toBe(200);
      const enqueue = await fetch(server.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          query: 'mutation { enqueueJob(input: { queue: "packed", payload: { n: 1 } }) { created job { id state } } }',
        }),
      });
      const body = (await enqueue.json()) as { data?: { enqueueJob: { created: boolean; job: { state: string } } } };
      expect(body.data?.enqueueJob).toMatchObject({ created: true, job: { state: "QUEUED" } });
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it("exports the client as jobwire/client to plain ESM", async () => {
    const res = await run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        'const m = await import("jobwire/client"); console.log(typeof m.JobwireClient, typeof m.Worker);',
      ],
      { cwd: project, timeoutMs: 60_000 },
    );
    expect(res.stderr).toBe("");
    expect(res.stdout).toBe("function function\n");
  });

  it("passes `npm publish --dry-run` without a warning about the package", async () => {
    const res = await run("npm", ["publish", "--dry-run"], { cwd: copy, timeoutMs: 180_000 });
    expect(res.code).toBe(0);
    // The one warning left is about the publisher, not the package: nobody is
    // logged in to the registry here (a dry run needs no login).
    const warnings = res.output
      .split("\n")
      .filter((line) => /\bwarn/i.test(line))
      .filter((line) => !/requires you to be logged in/.test(line));
    expect(warnings).toEqual([]);
  });
});
