/**
 * Picks the better-sqlite3 build that works on the running Node.
 *
 * better-sqlite3 12 (classic addon) aborts the process on Node 24 when the GC
 * finalises a Statement ("Assertion failed: (env) != nullptr" in
 * RemoveEnvironmentCleanupHook — Node 24's ObjectWrap change). better-sqlite3 13
 * (Node-API, prebuilt) fixes that but segfaults on Node 20. So both are
 * installed — 13 under the alias `better-sqlite3-napi`, an optionalDependency
 * so that npm skips it on Node 20 instead of warning EBADENGINE — and this module
 * chooses: 13 on Node >= 22, 12 below. Prisma's adapter imports
 * "better-sqlite3" by name, so on Node >= 22 a module-resolution hook
 * (resolve-driver-hook.mjs) redirects that import before the adapter is loaded.
 */
import { createRequire, register } from "node:module";
import type BetterSqlite3 from "better-sqlite3";

const NODE_MAJOR = Number(process.versions.node.split(".")[0]);

export const SQLITE_DRIVER_PACKAGE = NODE_MAJOR >= 22 ? "better-sqlite3-napi" : "better-sqlite3";

const require = createRequire(import.meta.url);

/** The Database class of the chosen build. */
export function sqliteDatabaseClass(): typeof BetterSqlite3 {
  try {
    return require(SQLITE_DRIVER_PACKAGE) as typeof BetterSqlite3;
  } catch (e) {
    // The alias is an optionalDependency (its engines say Node >= 22, and npm
    // skips it without a warning on Node 20), so an install made on Node 20
    // and then run on 24 lacks it.
    if ((e as { code?: unknown }).code === "MODULE_NOT_FOUND" && SQLITE_DRIVER_PACKAGE === "better-sqlite3-napi") {
      throw new Error(
        `better-sqlite3-napi (better-sqlite3 13, needed on Node >= 22) is not installed: npm skips this optional ` +
          `dependency on Node 20; run npm install again with this Node (${process.version})`,
        { cause: e },
      );
    }
    throw e;
  }
}

let hookRegistered = false;

/**
 * Makes later `import "better-sqlite3"` calls (Prisma's adapter) load the chosen
 * build. Must run before the adapter module is imported; idempotent.
 */
export function routeSqliteDriverImports(): void {
  if (hookRegistered || SQLITE_DRIVER_PACKAGE === "better-sqlite3") return;
  register(new URL("./resolve-driver-hook.mjs", import.meta.url));
  hookRegistered = true;
}
