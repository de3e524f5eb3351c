/** The jobwire command, run as a real child process. */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashToken } from "../../src/auth/token-service.ts";
import { loadMigrations } from "../../src/store/migrator.ts";
import { openStore } from "../../src/store/open-store.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "..", "bin", "jobwire.js");

async function jobwire(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...process.env, JOBWIRE_DATABASE_URL: "" },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe("jobwire CLI", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "jobwire-cli-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("migrate creates ./jobwire.db by default, then finds nothing to do", async () => {
    const first = await jobwire(["migrate"], dir);
    expect(first.code).toBe(0);
    const count = loadMigrations("sqlite").length;
    expect(first.stdout).toContain(`${count} migration(s) applied, 0 already applied`);
    expect(existsSync(join(dir, "jobwire.db"))).toBe(true);
    const second = await jobwire(["migrate"], dir);
    expect(second.stdout).toContain(`0 migration(s) applied, ${count} already applied`);
  });

  it("explains bad flags, bad URLs and unreachable databases in one line", async () => {
    const flag = await jobwire(["migrate", "--port-of-call", "1"], dir);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/^jobwire: Unknown option '--port-of-call'/);

    const url = await jobwire(["migrate", "-d", "mysql://localhost/x"], dir);
    expect(url.code).toBe(1);
    expect(url.stderr.trim().split("\n")).toHaveLength(1);
    expect(url.stderr).toMatch(/unsupported URL/);

    const down = await jobwire(["migrate", "-d", "postgres://nobody@127.0.0.1:1/x"], dir);
    expect(down.code).toBe(1);
    expect(down.stderr.trim()).toMatch(/^jobwire: .*ECONNREFUSED/);

    const pool = await jobwire(["migrate", "--pool-size", "zero"], dir);
    expect(pool.code).toBe(2);
    expect(pool.stderr).toMatch(/--pool-size must be an integer/);

    expect((await jobwire(["launch"], dir)).code).toBe(2);
    expect((await jobwire(["--help"], dir)).stdout).toMatch(/Usage:/);
  });

  it("token create prints the token once (stored hashed), list shows it without it, revoke removes it", async () => {
    const db = ["-d", `file:${join(dir, "t.db")}`];
    const created = await jobwire(
      ["token", "create", "--name", "ci", "--role", "worker", "--queues", "email,reports.*", "--expires", "30d", ...db],
      dir,
    );
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^jw_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(/created token ci \(worker, queues email,reports\.\*, expires 20\d\d-/);

    const store = await openStore(`file:${join(dir, "t.db")}`);
    try {
      const [row] = await store.listApiTokens();
      expect(row).toMatchObject({
        name: "ci",
        role: "worker",
        queues: ["email", "reports.*"],
        tokenHash: hashToken(token),
      });
      const days = ((row?.expiresAt?.getTime() ?? 0) - (row?.createdAt.getTime() ?? 0)) / 86_400_000;
      expect(days).toBe(30);
    } finally {
      await store.close();
    }

    const listed = await jobwire(["token", "list", ...db], dir);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^NAME\tROLE\tQUEUES\tCREATED\tEXPIRES\nci\tworker\temail,reports\.\*\t/);
    expect(listed.stdout).not.toContain(token);

    const duplicate = await jobwire(["token", "create", "--name", "ci", "--role", "viewer", ...db], dir);
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toMatch(/^jobwire: name: a token named ci exists already\n$/);
    const badRole = await jobwire(["token", "create", "--name", "x", "--role", "root", ...db], dir);
    expect(badRole.stderr).toMatch(/role: must be admin, producer, worker or viewer/);
    const badExpiry = await jobwire(
      ["token", "create", "--name", "x", "--role", "viewer", "--expires", "soon", ...db],
      dir,
    );
    expect(badExpiry.stderr).toMatch(/--expires: must be a duration/);
    expect((await jobwire(["token", "create", "--role", "viewer", ...db], dir)).code).toBe(2);

    expect((await jobwire(["token", "revoke", "ci", ...db], dir)).stdout).toMatch(/revoked token ci/);
    const again = await jobwire(["token", "revoke", "ci", ...db], dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no token named "ci"/);
    expect((await jobwire(["token", "list", ...db], dir)).stdout).toBe("NAME\tROLE\tQUEUES\tCREATED\tEXPIRES\n");
  });
});
