#!/usr/bin/env node
// Swaps package.json for the one the server tarball ships, and back.
//
//   node scripts/pack-manifest.mjs strip     (prepack, after the build)
//   node scripts/pack-manifest.mjs restore   (postpack)
//
// What differs in the packed manifest, and why:
// - no `postinstall`: in the repository it generates the Prisma clients and
//   compiles dist/; a consumer gets dist/ compiled in the tarball and must do
//   no code generation (Prisma's CLI is a devDependency it does not have).
// - `exports["./client"]` points at the compiled SDK in dist/client/ (with
//   declarations and a browser build) instead of src/client/index.ts, which
//   the repository's own tests and examples import through tsx.
// - no `allowScripts`: npm reads that policy from the root project only, so it
//   is the repository's, not a consumer's (the README gives a consumer's).
// npm packs the package.json it finds on disk after prepack, so the swap is
// a file rename; the repository's own manifest waits in package.json.repo.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const manifest = join(root, "package.json");
const saved = join(root, "package.json.repo");
const mode = process.argv[2];

if (mode === "strip") {
  // A pack that died between the two steps left the repository's manifest here.
  if (existsSync(saved)) renameSync(saved, manifest);
  const text = readFileSync(manifest, "utf8");
  const pkg = JSON.parse(text);
  delete pkg.scripts.postinstall;
  delete pkg.allowScripts;
  pkg.exports = {
    ...pkg.exports,
    "./client": {
      types: "./dist/client/types/client/index.d.ts",
      browser: "./dist/client/browser.js",
      default: "./dist/client/index.js",
    },
  };
  writeFileSync(saved, text);
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
} else if (mode === "restore") {
  if (existsSync(saved)) renameSync(saved, manifest);
} else {
  process.stderr.write("usage: node scripts/pack-manifest.mjs strip|restore\n");
  process.exit(2);
}
