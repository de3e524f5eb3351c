/**
 * Compares what prisma/schema.prisma says the database looks like with what the
 * hand-written migrations actually produce, for the schema-drift test.
 *
 * Both sides are reduced to one plain SchemaShape (tables → columns with type
 * and nullability, primary keys, indexes by name) and diffed into readable
 * lines, so a failing test says exactly what drifted.
 *
 * The model side comes from Prisma's DMMF, computed by the prisma-schema wasm
 * module (`@prisma/get-dmmf`, the function `@prisma/internals` wraps), because
 * `prisma migrate diff` needs the schema-engine binary, which cannot be
 * downloaded here. The database side is read from the catalog (PRAGMAs on
 * SQLite, pg_catalog on PostgreSQL).
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { getDMMF } from "@prisma/get-dmmf";
import type { GetDMMFError } from "@prisma/get-dmmf";
import type { Dialect } from "../../src/store/job-store.ts";
import { PARTIAL_INDEXES } from "../../src/store/partial-indexes.ts";
import { sqliteDatabaseClass } from "../../src/store/sqlite/driver.ts";
import { withPg } from "./backends.ts";

type Document = Exclude<ReturnType<typeof getDMMF>, GetDMMFError>;
type Model = Document["datamodel"]["models"][number];
type ScalarField = Model["fields"][number];

export interface ColumnShape {
  /** SQLite: the declared type, upper-cased. PostgreSQL: format_type(), e.g. "timestamp(3) without time zone". */
  type: string;
  nullable: boolean;
}

export interface PrimaryKeyShape {
  /** The constraint name on PostgreSQL; null on SQLite, where a primary key has no name of its own. */
  name: string | null;
  columns: string[];
}

export interface TableShape {
  columns: Record<string, ColumnShape>;
  primaryKey: PrimaryKeyShape | null;
}

export interface IndexShape {
  table: string;
  columns: string[];
  unique: boolean;
  /** The predicate of a partial index, normalised (see normalisePredicate); null for a full index. */
  where: string | null;
}

export interface SchemaShape {
  tables: Record<string, TableShape>;
  /** Every index except those backing a primary key (compared as TableShape.primaryKey), by name. */
  indexes: Record<string, IndexShape>;
}

/** The migrator's bookkeeping table: created by the migrator, not by a migration. */
const MIGRATIONS_TABLE = "_jobwire_migrations";

const schemaPath = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "prisma", "schema.prisma");

/**
 * What each Prisma scalar becomes in each dialect. SQLite Json is TEXT on purpose
 * (see prisma/sqlite/migrations/*_init: JSONB would get NUMERIC affinity).
 * Types not listed here throw, so adopting one forces a decision here instead of
 * a silent pass.
 */
const COLUMN_TYPES: Record<Dialect, Record<string, string>> = {
  sqlite: {
    String: "TEXT",
    Int: "INTEGER",
    BigInt: "INTEGER",
    Boolean: "BOOLEAN",
    DateTime: "DATETIME",
    Json: "TEXT",
  },
  postgres: {
    String: "text",
    Int: "integer",
    BigInt: "bigint",
    Boolean: "boolean",
    DateTime: "timestamp(3) without time zone",
    Json: "jsonb",
  },
};

export function loadDmmf(): Document {
  const result = getDMMF({ datamodel: readFileSync(schemaPath, "utf8") });
  if ("error" in result)
    throw new Error(`prisma/schema.prisma does not parse: ${result.reason}`, { cause: result.error });
  return result;
}

/** The database prisma/schema.prisma plus PARTIAL_INDEXES describe, in `dialect`. */
export function expectedSchema(dialect: Dialect, dmmf: Document = loadDmmf()): SchemaShape {
  const { models, indexes, enums } = dmmf.datamodel;
  if (enums.length > 0) throw new Error("schema-drift: enums are not mapped yet; extend test/helpers/schema-drift.ts");
  const tableOf = (modelName: string): Model => {
    const model = models.find((m) => m.name === modelName);
    if (!model) throw new Error(`schema-drift: index on unknown model ${modelName}`);
    return model;
  };
  const tableName = (model: Model): string => model.dbName ?? model.name;
  const columnName = (model: Model, fieldName: string): string => {
    const field = model.fields.find((f) => f.name === fieldName);
    if (!field) throw new Error(`schema-drift: ${model.name} has no field ${fieldName}`);
    return field.dbName ?? field.name;
  };

  const shape: SchemaShape = { tables: {}, indexes: {} };
  for (const model of models) {
    const columns: Record<string, ColumnShape> = {};
    // Relation fields (kind "object") are Prisma-side navigation, not columns.
    for (const field of model.fields.filter((f) => f.kind !== "object")) {
      columns[field.dbName ?? field.name] = { type: columnType(dialect, model, field), nullable: !field.isRequired };
    }
    shape.tables[tableName(model)] = { columns, primaryKey: null };
  }

  for (const index of indexes) {
    const model = tableOf(index.model);
    const table = tableName(model);
    const columns = index.fields.map((f) => columnName(model, f.name));
    for (const f of index.fields) {
      // Sort order, prefix length and operator classes change the index without
      // changing its columns; this comparison would not see them, so refuse.
      if (f.sortOrder === "desc" || f.length !== undefined || f.operatorClass !== undefined) {
        throw new Error(`schema-drift: index options on ${index.model}.${f.name} are not compared yet`);
      }
    }
    if (index.algorithm !== undefined && index.algorithm !== "BTree") {
      throw new Error(`schema-drift: index algorithm ${index.algorithm} on ${index.model} is not compared yet`);
    }
    switch (index.type) {
      case "id": {
        const tableShape = shape.tables[table];
        if (!tableShape) throw new Error(`schema-drift: no table ${table}`);
        tableShape.primaryKey = { name: dialect === "postgres" ? (index.dbName ?? `${table}_pkey`) : null, columns };
        break;
      }
      case "unique":
      case "normal": {
        // Prisma's default names when no map: is given: <table>_<columns>_key / _idx.
        const suffix = index.type === "unique" ? "key" : "idx";
        const name = index.dbName ?? `${table}_${columns.join("_")}_${suffix}`;
        shape.indexes[name] = { table, columns, unique: index.type === "unique", where: null };
        break;
      }
      default:
        throw new Error(`schema-drift: ${index.type} indexes are not compared yet`);
    }
  }

  for (const partial of PARTIAL_INDEXES) {
    if (shape.indexes[partial.name]) throw new Error(`schema-drift: ${partial.name} is declared twice`);
    shape.indexes[partial.name] = {
      table: partial.table,
      columns: [...partial.columns],
      unique: "unique" in partial && partial.unique,
      where: normalisePredicate(partial.where),
    };
  }
  return shape;
}

function columnType(dialect: Dialect, model: Model, field: ScalarField): string {
  const where = `${model.name}.${field.name}`;
  if (field.kind !== "scalar") throw new Error(`schema-drift: ${field.kind} field ${where} is not mapped yet`);
  if (field.isList) throw new Error(`schema-drift: list field ${where} is not mapped yet`);
  if (field.nativeType) throw new Error(`schema-drift: @db.${field.nativeType[0]} on ${where} is not mapped yet`);
  const type = COLUMN_TYPES[dialect][field.type];
  if (!type) throw new Error(`schema-drift: Prisma type ${field.type} (${where}) has no ${dialect} mapping yet`);
  return type;
}

/**
 * Reduces an index predicate to one spelling, so that PARTIAL_INDEXES'
 * `state = 'QUEUED'`, SQLite's stored `"state" = 'QUEUED'` and PostgreSQL's
 * deparsed `(state = 'QUEUED'::text)` compare equal: no identifier quotes, no
 * casts, no redundant outer parentheses, single spaces.
 */
export function normalisePredicate(sql: string): string {
  let s = sql
    .replace(/"/g, "")
    .replace(/::\w+(\(\d+\))?/g, "")
    .replace(/\s+/g, " ")
    .trim();
  while (s.startsWith("(") && s.endsWith(")") && closingParen(s) === s.length - 1) s = s.slice(1, -1).trim();
  return s;
}

/** Index of the parenthesis closing the one at 0, ignoring parentheses inside '…' literals. */
function closingParen(s: string): number {
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'") quoted = !quoted;
    else if (!quoted && c === "(") depth++;
    else if (!quoted && c === ")" && --depth === 0) return i;
  }
  return -1;
}

/** Reads the shape of the database at `url` (a file: URL or a PostgreSQL URL with search_path). */
export async function introspect(dialect: Dialect, url: string): Promise<SchemaShape> {
  return dialect === "sqlite" ? introspectSqlite(sqliteFile(url)) : introspectPostgres(url);
}

function sqliteFile(url: string): string {
  if (!url.startsWith("file:")) throw new Error(`not a SQLite URL: ${url}`);
  return url.slice("file:".length);
}

function introspectSqlite(filePath: string): SchemaShape {
  const Database = sqliteDatabaseClass();
  const db = new Database(filePath, { readonly: true, fileMustExist: true });
  try {
    const shape: SchemaShape = { tables: {}, indexes: {} };
    const tables = db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`)
      .pluck()
      .all() as string[];
    for (const table of tables.filter((t) => t !== MIGRATIONS_TABLE)) {
      const info = db.prepare('SELECT name, type, "notnull", pk FROM pragma_table_info(?)').all(table) as {
        name: string;
        type: string;
        notnull: number;
        pk: number;
      }[];
      const columns: Record<string, ColumnShape> = {};
      for (const c of info) columns[c.name] = { type: c.type.toUpperCase(), nullable: c.notnull === 0 };
      const pk = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
      shape.tables[table] = {
        columns,
        primaryKey: pk.length > 0 ? { name: null, columns: pk.map((c) => c.name) } : null,
      };

      const list = db.prepare('SELECT name, "unique", origin, partial FROM pragma_index_list(?)').all(table) as {
        name: string;
        unique: number;
        origin: "c" | "u" | "pk";
        partial: number;
      }[];
      // origin 'pk' is the automatic index of a non-INTEGER primary key: already
      // compared as the table's primary key.
      for (const index of list.filter((i) => i.origin !== "pk")) {
        const keyColumns = db
          .prepare("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
          .pluck()
          .all(index.name) as (string | null)[];
        let where: string | null = null;
        if (index.partial === 1) {
          const sql = db
            .prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?")
            .pluck()
            .get(index.name);
          const match = typeof sql === "string" ? /\)\s*WHERE\s+([\s\S]+)$/i.exec(sql) : null;
          where = match?.[1] ? normalisePredicate(match[1]) : `<unparsed: ${String(sql)}>`;
        }
        shape.indexes[index.name] = {
          table,
          columns: keyColumns.map((c) => c ?? "<expression>"),
          unique: index.unique === 1,
          where,
        };
      }
    }
    return shape;
  } finally {
    db.close();
  }
}

async function introspectPostgres(url: string): Promise<SchemaShape> {
  return withPg(async (client) => {
    const shape: SchemaShape = { tables: {}, indexes: {} };
    // format_type() rather than information_schema.columns.data_type: it keeps
    // the precision ("timestamp(3) without time zone"), which Prisma relies on.
    const columns = await client.query<{ table: string; column: string; type: string; nullable: boolean }>(`
      SELECT c.relname AS "table", a.attname AS "column",
             format_type(a.atttypid, a.atttypmod) AS "type", NOT a.attnotnull AS "nullable"
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
       WHERE c.relnamespace = current_schema()::regnamespace
         AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
       ORDER BY c.relname, a.attnum`);
    for (const row of columns.rows) {
      if (row.table === MIGRATIONS_TABLE) continue;
      const table = (shape.tables[row.table] ??= { columns: {}, primaryKey: null });
      table.columns[row.column] = { type: row.type, nullable: row.nullable };
    }

    // Key columns only (the first indnkeyatts of indkey; the rest are INCLUDE
    // columns); an expression is attnum 0 and shows as "<expression>".
    const indexes = await client.query<{
      table: string;
      name: string;
      unique: boolean;
      primary: boolean;
      predicate: string | null;
      columns: string[];
    }>(`
      SELECT t.relname AS "table", i.relname AS "name", ix.indisunique AS "unique", ix.indisprimary AS "primary",
             pg_get_expr(ix.indpred, ix.indrelid) AS "predicate",
             ARRAY(SELECT COALESCE(a.attname::text, '<expression>')
                     FROM unnest(ix.indkey::smallint[]) WITH ORDINALITY AS k(attnum, ord)
                     LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum
                    WHERE k.ord <= ix.indnkeyatts
                    ORDER BY k.ord) AS "columns"
        FROM pg_index ix
        JOIN pg_class i ON i.oid = ix.indexrelid
        JOIN pg_class t ON t.oid = ix.indrelid
       WHERE t.relnamespace = current_schema()::regnamespace
       ORDER BY i.relname`);
    for (const row of indexes.rows) {
      if (row.table === MIGRATIONS_TABLE) continue;
      if (row.primary) {
        // A primary key's index carries the constraint's name.
        const table = (shape.tables[row.table] ??= { columns: {}, primaryKey: null });
        table.primaryKey = { name: row.name, columns: row.columns };
        continue;
      }
      shape.indexes[row.name] = {
        table: row.table,
        columns: row.columns,
        unique: row.unique,
        where: row.predicate === null ? null : normalisePredicate(row.predicate),
      };
    }
    return shape;
  }, url);
}

/** Every difference between the two shapes, one readable line each; [] when they agree. */
export function compareSchemas(expected: SchemaShape, actual: SchemaShape): string[] {
  const out: string[] = [];
  for (const name of union(expected.tables, actual.tables)) {
    const e = expected.tables[name];
    const a = actual.tables[name];
    if (!a) {
      out.push(`table ${name}: missing from the database`);
      continue;
    }
    if (!e) {
      out.push(`table ${name}: in the database but not in schema.prisma`);
      continue;
    }
    for (const column of union(e.columns, a.columns)) {
      const ec = e.columns[column];
      const ac = a.columns[column];
      if (!ac) out.push(`column ${name}.${column}: missing from the database`);
      else if (!ec) out.push(`column ${name}.${column}: in the database but not in schema.prisma`);
      else {
        if (ac.type !== ec.type) out.push(`column ${name}.${column}: type is ${ac.type}, expected ${ec.type}`);
        if (ac.nullable !== ec.nullable) {
          out.push(`column ${name}.${column}: is ${nullability(ac.nullable)}, expected ${nullability(ec.nullable)}`);
        }
      }
    }
    const ek = describePrimaryKey(e.primaryKey);
    const ak = describePrimaryKey(a.primaryKey);
    if (ek !== ak) out.push(`table ${name}: primary key is ${ak}, expected ${ek}`);
  }

  for (const name of union(expected.indexes, actual.indexes)) {
    const e = expected.indexes[name];
    const a = actual.indexes[name];
    if (!a) {
      out.push(`index ${name}: missing from the database`);
      continue;
    }
    if (!e) {
      out.push(`index ${name}: in the database but not in schema.prisma or PARTIAL_INDEXES`);
      continue;
    }
    if (a.table !== e.table) out.push(`index ${name}: is on table ${a.table}, expected ${e.table}`);
    if (a.columns.join(", ") !== e.columns.join(", ")) {
      out.push(`index ${name}: columns are (${a.columns.join(", ")}), expected (${e.columns.join(", ")})`);
    }
    if (a.unique !== e.unique) out.push(`index ${name}: is ${uniqueness(a.unique)}, expected ${uniqueness(e.unique)}`);
    if (a.where !== e.where) out.push(`index ${name}: is ${partiality(a.where)}, expected ${partiality(e.where)}`);
  }
  return out;
}

/** The drift between schema.prisma (+ PARTIAL_INDEXES) and the database at `url`. */
export async function findSchemaDrift(dialect: Dialect, url: string): Promise<string[]> {
  return compareSchemas(expectedSchema(dialect), await introspect(dialect, url));
}

function union(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
}

function nullability(nullable: boolean): string {
  return nullable ? "nullable" : "NOT NULL";
}

function uniqueness(unique: boolean): string {
  return unique ? "unique" : "not unique";
}

function partiality(where: string | null): string {
  return where === null ? "not partial" : `partial WHERE ${where}`;
}

function describePrimaryKey(pk: PrimaryKeyShape | null): string {
  if (!pk) return "none";
  return `${pk.name === null ? "" : `${pk.name} `}(${pk.columns.join(", ")})`;
}
