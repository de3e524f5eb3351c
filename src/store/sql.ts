/**
 * The tagged template the store builds its statements with: `sql`, `join`,
 * `raw`, `empty` and the `Sql` class of sql-template-tag, which is the very
 * library Prisma's client re-exports as `sqltag` (same output, checked when
 * this replaced it). `Sql#sql` has `?` placeholders (SQLite), `Sql#text`
 * `$n` (PostgreSQL), `Sql#values` the values in order.
 *
 * Imported from here rather than from "@prisma/client/runtime/client": the
 * store runs its SQL on driver clients (see sql-client.ts), and loading
 * Prisma's client runtime only for the tag cost ~14 MiB of resident memory in
 * every process that opens a store.
 */
export { default as sql, empty, join, raw, Sql } from "sql-template-tag";
