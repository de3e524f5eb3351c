/** The jobwire command, run as a real child process. */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

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
    expect(first.stdout).toMatch(/1 migration\(s\) applied, 0 already applied/);
    expect(existsSync(join(dir, "jobwire.db"))).toBe(true);
    const second = await jobwire(["migrate"], dir);
    expect(second.stdout).toMatch(/0 migration\(s\) applied, 1 already applied/);
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
});
