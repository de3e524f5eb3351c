#!/usr/bin/env node
// Compiles src/ to plain JavaScript in dist/src/ (esbuild, per file, types
// stripped, same layout), so `jobwire` runs without a TypeScript loader.
//
// Why: `jobwire serve` through tsx carries tsx's module-hooks thread (a second
// V8 isolate): measured 127 MiB idle RSS against ~96 MiB for the same server
// compiled, and the server's memory target under load is 150 MiB.
// bin/jobwire.js uses dist/ only while it is newer than every file of src/;
// after an edit it runs the sources through tsx until the next build, so the
// two never disagree. Tests run the sources themselves (vitest).
//
// Run by `npm install` (postinstall, after the Prisma clients are generated)
// and by `npm run build`; `npm run bench` adds --with-bench to compile the
// benchmarks too, so they measure the code `jobwire serve` runs.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { transformSync } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Folders to compile; bench/ only for `npm run bench` (bench/run.ts passes --with-bench). */
const folders = ["src", ...(process.argv.includes("--with-bench") ? ["bench"] : [])];
/** Files besides TypeScript that code reads next to itself at run time. */
const ASSETS = /\.(graphql|mjs|json)$/;
/** A relative import of a .ts file, in a static import/export or a dynamic import(). */
const TS_SPECIFIER = /((?:from|import)\s*\(?\s*)(["'])(\.{1,2}\/[^"']+)\.ts\2/g;

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

const started = Date.now();
rmSync(join(root, "dist"), { recursive: true, force: true });
let compiled = 0;
const sources = folders
  .flatMap((folder) => [...files(join(root, folder))])
  // bench/peers/ runs against its own node_modules: bench/peers.ts bundles it there.
  .filter((p) => !p.includes("/bench/results/") && !p.includes("/bench/peers/"))
  // Prisma's generated clients are read only by tests (the store runs its SQL
  // on the drivers); compiled they would be dead code in the package that
  // imports @prisma/client, a devDependency.
  .filter((p) => !p.includes("/src/store/__generated__/"));
for (const path of sources) {
  const target = join(root, "dist", relative(root, path));
  mkdirSync(dirname(target), { recursive: true });
  if (path.endsWith(".ts") && !path.endsWith(".d.ts")) {
    const { code } = transformSync(readFileSync(path, "utf8"), {
      loader: "ts",
      format: "esm",
      target: "node20",
      sourcefile: relative(root, path),
    });
    writeFileSync(target.replace(/\.ts$/, ".js"), code.replace(TS_SPECIFIER, "$1$2$3.js$2"));
    compiled++;
  } else if (ASSETS.test(path)) {
    copyFileSync(path, target);
  }
}
// The stamp bin/jobwire.js compares with the sources' modification times.
writeFileSync(join(root, "dist", "BUILT"), `${new Date().toISOString()}\n`);
const newest = Math.max(...[...files(join(root, "src"))].map((p) => statSync(p).mtimeMs));
if (newest > statSync(join(root, "dist", "BUILT")).mtimeMs) {
  process.stderr.write("jobwire build: a source changed while building; run npm run build again\n");
  process.exit(1);
}
process.stdout.write(`jobwire: compiled ${compiled} files to dist/ in ${Date.now() - started} ms\n`);
