/**
 * The backends every store/service test runs on: SQLite always, PostgreSQL when
 * JOBWIRE_TEST_POSTGRES_URL is set (always in CI, where a missing URL fails the
 * run in global-setup.ts). Each test gets a fresh database: a new SQLite file,
 * or a new PostgreSQL schema reached through search_path.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { JobService } from "../../src/jobs/job-service.ts";
import type { JobServiceOptions } from "../../src/jobs/job-service.ts";
import type { Dialect, JobStore } from "../../src/store/job-store.ts";
import { openStore } from "../../src/store/open-store.ts";
import type { OpenStoreOptions } from "../../src/store/open-store.ts";

export const POSTGRES_URL = process.env.JOBWIRE_TEST_POSTGRES_URL ?? "";

export const BACKENDS: Dialect[] = POSTGRES_URL ? ["sqlite", "postgres"] : ["sqlite"];

export interface TestDatabase {
  dialect: Dialect;
  /** The URL to open more stores (connections) on the same database. */
  url: string;
  open(options?: OpenStoreOptions): Promise<JobStore>;
  service(options?: JobServiceOptions & { store?: JobStore }): Promise<JobService>;
  /** Closes every store opened through this object and drops the database. */
  dispose(): Promise<void>;
}

let counter = 0;

export async function createTestDatabase(dialect: Dialect): Promise<TestDatabase> {
  const stores: JobStore[] = [];
  let url: string;
  let drop: () => Promise<void>;
  if (dialect === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "jobwire-test-"));
    url = `file:${join(dir, "jobwire.db")}`;
    drop = async () => rmSync(dir, { recursive: true, force: true });
  } else {
    const schema = `jw_test_${process.pid}_${Date.now().toString(36)}_${counter++}`;
    await withPg((c) => c.query(`CREATE SCHEMA "${schema}"`));
    const u = new URL(POSTGRES_URL);
    u.searchParams.set("options", `-c search_path=${schema}`);
    url = u.toString();
    drop = () => withPg((c) => c.query(`DROP SCHEMA "${schema}" CASCADE`)).then(() => undefined);
  }
  const db: TestDatabase = {
    dialect,
    url,
    async open(options) {
      const store = await openStore(url, options);
      stores.push(store);
      return store;
    },
    async service(options = {}) {
      const { store, ...rest } = options;
      return new JobService(store ?? (await db.open()), rest);
    },
    async dispose() {
      await Promise.all(stores.splice(0).map((s) => s.close()));
      await drop();
    },
  };
  return db;
}

export async function withPg<T>(fn: (client: pg.Client) => Promise<T>, url = POSTGRES_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
