/**
 * What a SQLite server process does not load:
 * - Prisma's client runtime (~14 MiB of resident memory): the store builds its
 *   statements with sql-template-tag (src/store/sql.ts) and runs them on driver
 *   clients. Prisma stays the model; the generated clients are for tests and
 *   the drift check.
 * - node-postgres (~8 MiB): imported only when the database is PostgreSQL.
 * Checked in a child process, since this test process loads both for other tests.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

describe("runtime footprint", () => {
  it("serving and opening a SQLite store load no @prisma package and not node-postgres", () => {
    const script = `
      const { createRequire } = await import("node:module");
      await import("./src/server/server.ts");
      const { openStore } = await import("./src/store/open-store.ts");
      const store = await openStore(process.env.FOOTPRINT_DATABASE_URL);
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => /[\\/]node_modules[\\/](@prisma|pg)[\\/]/.test(k));
      await store.close();
      console.log(JSON.stringify(loaded));`;
    const dir = mkdtempSync(join(tmpdir(), "jobwire-footprint-"));
    try {
      const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...process.env, FOOTPRINT_DATABASE_URL: `file:${join(dir, "footprint.db")}` },
      });
      expect(JSON.parse(out.trim().split("\n").pop() ?? "null")).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
