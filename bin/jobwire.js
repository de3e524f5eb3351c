#!/usr/bin/env node
// The jobwire command. Installed from the package (no src/ beside dist/), it
// runs the compiled dist/. In the repository it runs dist/ (scripts/build.mjs,
// run on npm install and by npm run build) while that is newer than every file
// of src/; otherwise the TypeScript sources through tsx's loader (a
// devDependency), so a fresh edit is never shadowed by an old build. Set
// JOBWIRE_FROM_SOURCE=1 to always run the sources.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const sources = join(root, "src");

function newestSourceMs(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSourceMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function builtMs() {
  try {
    return statSync(join(root, "dist", "BUILT")).mtimeMs;
  } catch {
    return -1;
  }
}

if (!existsSync(sources)) {
  await import("../dist/src/cli.js");
} else if (process.env.JOBWIRE_FROM_SOURCE !== "1" && builtMs() >= newestSourceMs(sources)) {
  await import("../dist/src/cli.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli.ts");
}
