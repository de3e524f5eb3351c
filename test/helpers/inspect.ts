/**
 * Reads the database behind a store directly (not through the code under test)
 * to check invariants: every job's event seqs are exactly 1..n.
 */
import { sqliteDatabaseClass } from "../../src/store/sqlite/driver.ts";
import type { TestDatabase } from "./backends.ts";
import { withPg } from "./backends.ts";

export interface EventSummary {
  jobId: string;
  state: string;
  lastSeq: number;
  seqs: number[];
}

export async function summariseEvents(db: TestDatabase): Promise<EventSummary[]> {
  const query = `SELECT j.id AS job_id, j.state, j.last_seq, e.seq FROM jobs j
    LEFT JOIN job_events e ON e.job_id = j.id ORDER BY j.id, e.seq`;
  const rows = await queryDatabase<{ job_id: number | string; state: string; last_seq: number; seq: number | null }>(
    db,
    query,
  );
  const byJob = new Map<string, EventSummary>();
  for (const r of rows) {
    const id = String(r.job_id);
    let s = byJob.get(id);
    if (!s) byJob.set(id, (s = { jobId: id, state: r.state, lastSeq: Number(r.last_seq), seqs: [] }));
    if (r.seq !== null) s.seqs.push(Number(r.seq));
  }
  return [...byJob.values()];
}

/** True when seqs are exactly 1, 2, …, lastSeq. */
export function isGapless(s: EventSummary): boolean {
  return s.seqs.length === s.lastSeq && s.seqs.every((seq, i) => seq === i + 1);
}

export interface EventRecord {
  id: number;
  jobId: string;
  type: string;
  /** epoch ms */
  at: number;
}

/** Every event of the database in id order (the order of their writes). */
export async function readEventLog(db: TestDatabase): Promise<EventRecord[]> {
  const query = `SELECT id, job_id, type, created_at FROM job_events ORDER BY id`;
  const rows = await queryDatabase<{
    id: number | string;
    job_id: number | string;
    type: string;
    created_at: string | number | Date;
  }>(db, query);
  return rows.map((r) => ({
    id: Number(r.id),
    jobId: String(r.job_id),
    type: r.type,
    at: r.created_at instanceof Date ? r.created_at.getTime() : new Date(r.created_at).getTime(),
  }));
}

/** Runs a read-only query on the test database directly, bypassing the store. */
export async function queryDatabase<T>(db: TestDatabase, query: string): Promise<T[]> {
  if (db.dialect === "sqlite") {
    const conn = new (sqliteDatabaseClass())(db.url.slice("file:".length), { readonly: true });
    try {
      return conn.prepare(query).all() as T[];
    } finally {
      conn.close();
    }
  }
  return withPg(async (c) => (await c.query(query)).rows as T[], db.url);
}
