/**
 * The GraphQL layer's own parent types, where no domain type fits a schema
 * type one to one (codegen maps these in codegen.yml).
 */
import type { JobState } from "../jobs/states.ts";
import type { JobFilter, JobPage } from "../jobs/types.ts";

/** A resolved page of Query.jobs; totalCount is counted only when asked for. */
export interface JobConnectionModel {
  page: JobPage;
  filter: JobFilter;
}

export type StateCounts = Record<JobState, number>;
