/**
 * `jobwire serve` as a child process, for tests that need more than one
 * server (or a real process to kill): starts it on port 0 with JSON logs,
 * waits for its "listening" line, and stops it with SIGTERM.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../../bin/jobwire.js", import.meta.url));

export interface ServeProcess {
  child: ChildProcess;
  /** e.g. http://127.0.0.1:41234/graphql */
  url: string;
  /** Every JSON log line so far. */
  logs: { msg?: string; level?: number; [key: string]: unknown }[];
  stderr(): string;
  /** SIGTERM, then the exit code (SIGKILL and null after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<number | null>;
}

/** How to start `jobwire`: this repository's bin by default, or the bin of an installed package. */
export interface ServeCommand {
  command: string;
  /** Arguments before "serve". */
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** `extraEnv`: more environment for the child (e.g. libfaketime's, helpers/faketime.ts). */
export async function startServeProcess(
  args: string[],
  timeoutMs = 30_000,
  extraEnv: NodeJS.ProcessEnv = {},
  how: ServeCommand = { command: process.execPath, args: [BIN] },
): Promise<ServeProcess> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(how.env ?? process.env)) if (!key.startsWith("JOBWIRE_")) env[key] = value;
  Object.assign(env, extraEnv);
  const child = spawn(how.command, [...how.args, "serve", "--port", "0", "--log-format", "json", ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
    ...(how.cwd && { cwd: how.cwd }),
  });
  const logs: ServeProcess["logs"] = [];
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`serve did not listen within ${timeoutMs} ms: ${stderr}`)),
      timeoutMs,
    );
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening: ${stderr}`));
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      try {
        const entry = JSON.parse(line) as ServeProcess["logs"][number];
        logs.push(entry);
        if (typeof entry.msg === "string" && entry.msg.startsWith("jobwire listening on ")) {
          clearTimeout(timer);
          resolve(String(entry.url));
        }
      } catch {
        // not a log line
      }
    });
  });
  return {
    child,
    url,
    logs,
    stderr: () => stderr,
    async stop(stopTimeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
