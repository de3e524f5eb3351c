/**
 * `jobwire serve` as a real process: auth is required by default on a
 * non-loopback address and works with a token made by `jobwire token create`;
 * `--auth off` there starts open with a warning; --allowed-origins reaches the
 * server.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startServeProcess } from "../helpers/serve-process.ts";
import type { ServeProcess } from "../helpers/serve-process.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "..", "bin", "jobwire.js");

describe("jobwire serve with auth", () => {
  let dir: string;
  let database: string;
  const servers: ServeProcess[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "jobwire-serve-auth-"));
    database = `file:${join(dir, "jobwire.db")}`;
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  const local = (s: ServeProcess) => s.url.replace("0.0.0.0", "127.0.0.1");
  const ask = (url: string, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ query: "{ lastEventId }" }),
    });

  it("on 0.0.0.0 requires a token by default, and one from `jobwire token create` works", async () => {
    const { stdout } = await run(process.execPath, [
      BIN,
      "token",
      "create",
      "--name",
      "ops",
      "--role",
      "viewer",
      "-d",
      database,
    ]);
    const token = stdout.trim();
    const s = await startServeProcess([
      "--host",
      "0.0.0.0",
      "-d",
      database,
      "--allowed-origins",
      "https://app.example.com",
    ]);
    servers.push(s);
    expect(s.logs.find((l) => l.msg?.startsWith("jobwire listening on"))).toMatchObject({ auth: "required" });
    expect((await ask(local(s))).status).toBe(401);
    expect((await ask(local(s), { authorization: `Bearer ${token}` })).status).toBe(200);
    const foreign = await ask(local(s), { authorization: `Bearer ${token}`, origin: "https://evil.example" });
    expect(foreign.status).toBe(403);
    const allowed = await ask(local(s), { authorization: `Bearer ${token}`, origin: "https://app.example.com" });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
  });

  it("--auth off on 0.0.0.0 starts open and logs a warning; loopback is open without one", async () => {
    const open = await startServeProcess(["--host", "0.0.0.0", "--auth", "off", "-d", database]);
    servers.push(open);
    expect((await ask(local(open))).status).toBe(200);
    expect(open.logs.some((l) => l.level === 40 && /--auth off on 0\.0\.0\.0/.test(String(l.msg)))).toBe(true);

    const loopback = await startServeProcess(["-d", `file:${join(dir, "other.db")}`]);
    servers.push(loopback);
    expect(loopback.logs.find((l) => l.msg?.startsWith("jobwire listening on"))).toMatchObject({ auth: "off" });
    expect(loopback.logs.some((l) => l.level === 40)).toBe(false);
    expect((await ask(loopback.url)).status).toBe(200);
  });
});
