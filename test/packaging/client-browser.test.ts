/**
 * @jobwire/client in a browser: the packed tarball, installed into an empty
 * project, bundled by esbuild for the browser (the package's "browser"
 * condition), loaded in headless Chromium (Debian's, driven by playwright-core;
 * no browser is downloaded), where it subscribes to a job over the platform's
 * WebSocket while this test moves the job along from Node.
 *
 * The page is served from another origin than the GraphQL server and only
 * subscribes: the server sends no CORS headers (yet), and a WebSocket needs none.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { join } from "node:path";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobwireClient } from "../../src/client/index.ts";
import { startTestServer } from "../helpers/api.ts";
import type { TestServer } from "../helpers/api.ts";
import { copyRepository, emptyProject, installTarball, makeTemp, pack, removeTemp } from "./pack.ts";

/** Debian's Chromium (apt-get install chromium; .ci/run installs it). */
const CHROMIUM = (() => {
  try {
    return execFileSync("which", ["chromium"], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
})();

/** Flags for a sandboxed root session on a machine with no outside network. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];

const PAGE = `import { JobwireClient } from "@jobwire/client";

const params = new URLSearchParams(location.search);
const client = new JobwireClient({ url: params.get("graphql") });
const seen = (window.jobwire = { states: [], done: false, error: null });
(async () => {
  try {
    for await (const event of client.watchJobEvents({ jobId: params.get("job") })) {
      seen.states.push(event.toState);
      if (event.toState === "SUCCEEDED" || event.toState === "FAILED") break;
    }
    await client.close();
    seen.done = true;
  } catch (e) {
    seen.error = String((e && e.stack) || e);
  }
})();
`;

interface Seen {
  states: string[];
  done: boolean;
  error: string | null;
}

let temp: string | undefined;
let bundle: { code: string; inputs: string[]; imports: string[] };
let pages: Server | undefined;
let pagesOrigin: string;
let server: TestServer | undefined;
let browser: Browser | undefined;

// Chromium is required in CI; a developer machine without it skips this file, visibly.
describe.skipIf(!CHROMIUM && process.env.CI !== "true")("the @jobwire/client browser build", () => {
  beforeAll(async () => {
    temp = makeTemp("client-browser");
    const copy = join(temp, "repo");
    const project = join(temp, "consumer");
    copyRepository(copy);
    const packed = await pack(copy, "./packages/client", join(temp, "out"));
    emptyProject(project);
    const installed = await installTarball(project, packed.tarball, 180_000);
    if (installed.code !== 0) throw new Error(`npm install exited ${installed.code}:\n${installed.output}`);
    writeFileSync(join(project, "page.mjs"), PAGE);
    const built = await build({
      absWorkingDir: project,
      entryPoints: ["page.mjs"],
      bundle: true,
      platform: "browser",
      format: "esm",
      target: "es2022",
      outfile: join(project, "bundle.js"),
      metafile: true,
      logLevel: "silent",
    });
    bundle = {
      code: readFileSync(join(project, "bundle.js"), "utf8"),
      inputs: Object.keys(built.metafile.inputs),
      imports: Object.values(built.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path)),
    };

    pages = createServer((req, res) => {
      if (req.url === "/bundle.js") {
        res.writeHead(200, { "content-type": "text/javascript" }).end(bundle.code);
      } else {
        res
          .writeHead(200, { "content-type": "text/html" })
          .end('<!doctype html><title>jobwire</title><script type="module" src="/bundle.js"></script>');
      }
    });
    await new Promise<void>((resolve) => (pages as Server).listen(0, "127.0.0.1", resolve));
    const address = pages.address();
    if (!address || typeof address === "string") throw new Error("no address");
    pagesOrigin = `http://127.0.0.1:${address.port}`;
    // The page's origin is allowed, as a deployment serving a dashboard from
    // another origin would set --allowed-origins (the WebSocket handshake from
    // any other Origin is refused with 403).
    server = await startTestServer("sqlite", { allowedOrigins: [pagesOrigin] });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await new Promise<void>((resolve) => (pages ? pages.close(() => resolve()) : resolve()));
    removeTemp(temp);
  });

  it("bundles the browser build: no ws, no node: module", () => {
    expect(bundle.inputs.some((p) => p.endsWith("node_modules/@jobwire/client/dist/browser.js"))).toBe(true);
    expect(bundle.inputs.filter((p) => p.includes("node_modules/ws/"))).toEqual([]);
    expect(bundle.imports).toEqual([]);
  });

  it("subscribes to a job in Chromium and sees it go QUEUED, RUNNING, SUCCEEDED", async () => {
    const t = server as TestServer;
    const node = new JobwireClient({ url: t.url });
    try {
      const { job } = await node.enqueueJob({ queue: "browser", payload: { n: 1 } });
      const page = await (browser as Browser).newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      const query = new URLSearchParams({ graphql: t.url, job: job.id });
      await page.goto(`${pagesOrigin}/?${query.toString()}`);
      const seen = () => page.evaluate(() => (globalThis as unknown as { jobwire?: Seen }).jobwire ?? null);
      // The page replays the stored QUEUED event first…
      await expect.poll(async () => (await seen())?.states, { timeout: 30_000 }).toEqual(["QUEUED"]);
      // …then receives the live ones as this test claims and completes the job.
      const [claimed] = await node.claimJobs({ queues: ["browser"], workerId: "packaging-test", limit: 1 });
      if (!claimed) throw new Error("nothing claimed");
      await node.completeJob({ jobId: job.id, leaseToken: claimed.leaseToken, result: { ok: true } });
      await expect.poll(async () => (await seen())?.done, { timeout: 30_000 }).toBe(true);
      expect(await seen()).toEqual({ states: ["QUEUED", "RUNNING", "SUCCEEDED"], done: true, error: null });
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await node.close();
    }
  });
});
