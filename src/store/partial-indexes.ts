/**
 * Indexes the migrations create that schema.prisma cannot declare (partial
 * indexes). The schema-drift test expects exactly the indexes of schema.prisma
 * plus these, so an index added to a migration but not listed here (or the
 * reverse) fails it.
 */
export const PARTIAL_INDEXES = Object.freeze([
  {
    table: "jobs",
    name: "jobs_claim_idx",
    columns: ["queue", "priority", "run_at", "id"],
    where: "state = 'QUEUED'",
    why: "claim reads only ready jobs, so its cost does not grow with finished jobs",
  },
  {
    table: "jobs",
    name: "jobs_scheduled_idx",
    columns: ["queue", "run_at"],
    where: "state = 'SCHEDULED'",
    why: "promotion of due scheduled jobs",
  },
] as const);
