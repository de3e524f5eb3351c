/**
 * A TypeScript script (an example, a test fixture) as a child process run
 * through tsx, from the repository root (so `jobwire/client` resolves to this
 * package). Collects stdout as lines, JSON-parsed where they are JSON, and
 * lets a test wait for a line, send a signal and read the exit code.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface ScriptProcess {
  child: ChildProcess;
  /** stdout lines, in order. */
  lines: string[];
  /** stdout lines that were JSON objects. */
  json: Record<string, unknown>[];
  stderr(): string;
  /** Resolves with the first JSON line matching `predicate` (past or future). */
  waitForJson(
    predicate: (line: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

/** `extraEnv`: more environment for the child (e.g. libfaketime's, helpers/faketime.ts). */
export function runScript(path: string, args: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): ScriptProcess {
  const child = spawn(process.execPath, ["--import", "tsx", path, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const json: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => (stderr += chunk));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    lines.push(line);
    try {
      const parsed = JSON.parse(line) as unknown;
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) json.push(parsed as Record<string, unknown>);
    } catch {
      // not JSON
    }
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    lines,
    json,
    stderr: () => stderr,
    exited,
    kill: (signal = "SIGTERM") => void child.kill(signal),
    waitForJson(predicate, what, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = json.find(predicate);
          if (!found) return false;
          cleanup();
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${stderr.slice(-2000)}`));
        }, timeoutMs);
        const onExit = () => {
          if (check()) return;
          cleanup();
          reject(new Error(`exited before ${what}; stderr: ${stderr.slice(-2000)}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(waiter);
          child.off("exit", onExit);
        };
        const waiter = () => void check();
        if (check()) return;
        waiters.add(waiter);
        child.once("exit", onExit);
      });
    },
  };
}
