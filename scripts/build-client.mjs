#!/usr/bin/env node
// Builds the SDK (src/client/) as the package @jobwire/client in
// packages/client/dist/, and copies it to dist/client/ for the server package's
// `jobwire/client` export:
//   index.js    Node (ws, node:http keep-alive agent), one ESM file
//   browser.js  browsers and bundlers (the platform's WebSocket and fetch):
//               src/client/platform/node.ts is swapped for browser.ts
//   types/      declarations (tsc, tsconfig.client.json)
// Dependencies stay imports (graphql, graphql-ws, ws), so the consumer's npm
// dedupes them with its own. Run by `npm run build:client` and on `npm pack`
// (prepack) of either package; after scripts/build.mjs, which empties dist/.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "packages", "client", "dist");
const started = Date.now();

// The two packages are released together: one version.
const serverVersion = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
const clientVersion = JSON.parse(readFileSync(join(root, "packages", "client", "package.json"), "utf8")).version;
if (serverVersion !== clientVersion) {
  process.stderr.write(`build-client: packages/client is ${clientVersion}, jobwire is ${serverVersion}\n`);
  process.exit(1);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

/** Serves src/client/platform/browser.ts wherever the SDK imports ./platform/node.ts. */
const browserPlatform = {
  name: "jobwire-browser-platform",
  setup(b) {
    b.onResolve({ filter: /\/platform\/node\.ts$/ }, (args) => ({
      path: join(args.resolveDir, args.path.replace(/node\.ts$/, "browser.ts")),
    }));
  },
};

const common = {
  entryPoints: [join(root, "src", "client", "index.ts")],
  bundle: true,
  format: "esm",
  packages: "external",
  legalComments: "none",
  logLevel: "warning",
};
await build({ ...common, platform: "node", target: "node20", outfile: join(out, "index.js") });
const browser = await build({
  ...common,
  platform: "browser",
  target: "es2022",
  outfile: join(out, "browser.js"),
  plugins: [browserPlatform],
  metafile: true,
});
const nodeOnly = Object.keys(browser.metafile.inputs).filter((p) => p.endsWith("platform/node.ts"));
const nodeImports = Object.values(browser.metafile.outputs)
  .flatMap((o) => o.imports)
  .filter((i) => i.path.startsWith("node:") || i.path === "ws");
if (nodeOnly.length > 0 || nodeImports.length > 0) {
  process.stderr.write(
    `build-client: the browser bundle reaches Node code: ${[...nodeOnly, ...nodeImports.map((i) => i.path)]}\n`,
  );
  process.exit(1);
}

execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.client.json"], {
  cwd: root,
  stdio: "inherit",
});

// tsc keeps the sources' "./x.ts" specifiers in declarations
// (rewriteRelativeImportExtensions rewrites only JavaScript); a consumer's tsc
// needs "./x.js", which it maps to x.d.ts.
const TS_SPECIFIER = /((?:from|import)\s*\(?\s*)(["'])(\.{1,2}\/[^"']+)\.ts\2/g;
for (const entry of readdirSync(join(out, "types"), { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith(".d.ts")) continue;
  const file = join(entry.parentPath, entry.name);
  writeFileSync(file, readFileSync(file, "utf8").replace(TS_SPECIFIER, "$1$2$3.js$2"));
}

// The server package's copy (jobwire/client).
rmSync(join(root, "dist", "client"), { recursive: true, force: true });
cpSync(out, join(root, "dist", "client"), { recursive: true });
process.stdout.write(
  `jobwire: built the client to packages/client/dist/ and dist/client/ in ${Date.now() - started} ms\n`,
);
