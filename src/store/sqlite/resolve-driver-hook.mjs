// Module-resolution hook registered by driver.ts on Node >= 22: Prisma's SQLite
// adapter imports "better-sqlite3", which must be the Node-API build there.
export async function resolve(specifier, context, nextResolve) {
  if (specifier === "better-sqlite3") return nextResolve("better-sqlite3-napi", context);
  return nextResolve(specifier, context);
}
