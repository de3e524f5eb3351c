/**
 * Packing the repository's two packages the way a release would, and
 * installing a tarball into an empty project, for the packaging tests.
 *
 * `npm pack` runs the package's prepack (scripts/build.mjs empties and rebuilds
 * dist/), so it never runs in the repository itself: other test files run
 * bin/jobwire.js, which uses that dist/, at the same time. Each packing test
 * copies the sources it needs to a temporary folder (node_modules linked) and
 * packs there.
 */
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));

/** What a command printed, and how it ended. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, for "no warning at all" checks. */
  output: string;
}

/** Runs a command to its end (never throws on a non-zero exit; the test checks `code`). */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: options.env ?? cleanEnv(),
        timeout: options.timeoutMs ?? 300_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") {
          reject(new Error(`${command} ${args.join(" ")} failed to run: ${error.message}\n${stderr}`));
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr, output: `${stdout}\n${stderr}` });
      },
    );
  });
}

/**
 * The environment minus what would bend npm or jobwire: npm_* (set when the
 * tests run under `npm test`, e.g. npm_config_prefix), JOBWIRE_*, and CI
 * (which changes npm's output).
 */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|JOBWIRE_)/i.test(key) || key === "CI" || key === "INIT_CWD") continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** A fresh temporary folder; `removeTemp` deletes it. */
export function makeTemp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `jobwire-${prefix}-`));
}

export function removeTemp(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** What packing needs from the repository: sources, build scripts, manifests, docs. */
const COPIED = [
  "package.json",
  "README.md",
  "LICENSE",
  "tsconfig.json",
  "tsconfig.client.json",
  "bin",
  "scripts",
  "src",
  "prisma",
  "packages/client",
];

/** Left out of the copy: build output, and Prisma's generated clients (only tests read them). */
function copied(path: string): boolean {
  const rel = relative(REPO, path);
  return !/(^|\/)(dist|node_modules)(\/|$)/.test(rel) && !rel.startsWith("src/store/__generated__");
}

/** Copies the repository's packable sources to `dir`, with node_modules linked to the repository's. */
export function copyRepository(dir: string): void {
  for (const entry of COPIED) cpSync(join(REPO, entry), join(dir, entry), { recursive: true, filter: copied });
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"), "dir");
}

/**
 * `npm pack` of `packageDir` (relative to `copyDir`) into `into`: the tarball's
 * path, its files (without the leading "package/") and npm's output.
 */
export async function pack(
  copyDir: string,
  packageDir: string,
  into: string,
): Promise<{ tarball: string; files: string[]; output: string }> {
  mkdirSync(into, { recursive: true });
  const packed = await run("npm", ["pack", packageDir, "--pack-destination", into], { cwd: copyDir });
  if (packed.code !== 0) throw new Error(`npm pack ${packageDir} exited ${packed.code}:\n${packed.output}`);
  const tgz = readdirSync(into).filter((f) => f.endsWith(".tgz"));
  if (tgz.length !== 1) throw new Error(`expected one tarball in ${into}, found ${tgz.join(", ")}`);
  const tarball = join(into, tgz[0] as string);
  const listed = await run("tar", ["-tzf", tarball], { cwd: into });
  const files = listed.stdout
    .split("\n")
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ""));
  return { tarball, files, output: packed.output };
}

/**
 * What a consumer's package.json needs for npm's allowScripts check, as the
 * README tells it: npm reads that policy only from the root project, so no
 * dependency can declare it for its consumer. better-sqlite3 compiles its
 * native addon (the name covers the better-sqlite3-napi alias too);
 * @apollo/protobufjs's postinstall only prepares its own CLI.
 */
export const CONSUMER_ALLOW_SCRIPTS = { "better-sqlite3": true, "@apollo/protobufjs": false } as const;

/** An empty ESM project in `dir`, holding only its name and, optionally, an allowScripts policy. */
export function emptyProject(dir: string, allowScripts?: Record<string, boolean>): void {
  mkdirSync(dir, { recursive: true });
  const pkg = { name: "consumer", private: true, type: "module", ...(allowScripts && { allowScripts }) };
  writeFileSync(join(dir, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
}

/** `npm install <tarball>` in `project`, as a consumer would. */
export function installTarball(project: string, tarball: string, timeoutMs = 480_000): Promise<RunResult> {
  return run("npm", ["install", tarball, "--no-audit", "--no-fund"], { cwd: project, timeoutMs });
}
