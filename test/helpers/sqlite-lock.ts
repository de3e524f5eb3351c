/**
 * Another process holding a SQLite file's write lock: the sqlite3 shell in
 * BEGIN IMMEDIATE (with a write, so the lock is really taken), until
 * release(). Needs the `sqlite3` shell (Debian package sqlite3, installed by
 * .ci/run); without it the tests that use it skip with a message, and fail
 * in CI.
 */
import { execFileSync, spawn } from "node:child_process";

export const SQLITE3 = (() => {
  try {
    return execFileSync("sh", ["-c", "command -v sqlite3"], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
})();

if (!SQLITE3) {
  const message = "the sqlite3 shell is not installed (apt-get install sqlite3): outside-lock tests SKIPPED";
  if (process.env.CI === "true") throw new Error(`CI: ${message}`);
  console.warn(`jobwire tests: ${message}`);
}

export interface HeldLock {
  /** Rolls the shell's transaction back and waits for it to exit; resolves with its exit code. */
  release(): Promise<number | null>;
}

export async function holdWriteLock(file: string, timeoutMs = 10_000): Promise<HeldLock> {
  const shell = spawn(SQLITE3, [file], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  shell.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  shell.stderr.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => shell.once("exit", resolve));
  shell.stdin.write(
    "BEGIN IMMEDIATE;\nINSERT INTO queues (name, created_at, updated_at) VALUES ('outside', 'x', 'x');\nSELECT 'locked';\n",
  );
  const deadline = Date.now() + timeoutMs;
  while (!out.includes("locked")) {
    if (Date.now() > deadline || shell.exitCode !== null) {
      shell.kill();
      throw new Error(`sqlite3 did not take the lock: ${out}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  let released: Promise<number | null> | null = null;
  return {
    release() {
      released ??= (shell.stdin.end("ROLLBACK;\n.quit\n"), exited);
      return released;
    },
  };
}
