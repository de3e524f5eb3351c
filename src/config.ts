/**
 * Command-line flags and environment variables, parsed once into a typed
 * Config. Flags win over environment variables; both win over defaults.
 */
import { parseArgs } from "node:util";
import { LIMITS } from "./jobs/limits.ts";

export const DEFAULT_DATABASE_URL = "file:./jobwire.db";

export interface Config {
  /** `file:<path>` (embedded SQLite) or `postgres://…`. */
  databaseUrl: string;
  /** PostgreSQL connection pool size. */
  poolSize: number;
  /** Largest JSON payload/result/progress/metadata accepted, in bytes. */
  maxPayloadBytes: number;
}

export class ConfigError extends Error {}

export const ENVIRONMENT = Object.freeze({
  JOBWIRE_DATABASE_URL: "database URL (default file:./jobwire.db)",
  JOBWIRE_POOL_SIZE: "PostgreSQL pool size (default 10)",
  JOBWIRE_MAX_PAYLOAD_BYTES: `largest JSON payload in bytes (default ${LIMITS.defaultMaxPayloadBytes})`,
});

export function parseConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): { config: Config; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        database: { type: "string", short: "d" },
        "pool-size": { type: "string" },
        "max-payload-bytes": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) positionals.unshift("help");
  const config: Config = {
    databaseUrl: values.database ?? (env.JOBWIRE_DATABASE_URL || DEFAULT_DATABASE_URL),
    poolSize: positiveInt(values["pool-size"] ?? env.JOBWIRE_POOL_SIZE, "--pool-size", 10, 1_000),
    maxPayloadBytes: positiveInt(
      values["max-payload-bytes"] ?? env.JOBWIRE_MAX_PAYLOAD_BYTES,
      "--max-payload-bytes",
      LIMITS.defaultMaxPayloadBytes,
      64 * 1024 * 1024,
    ),
  };
  return { config, positionals };
}

function positiveInt(raw: string | undefined, name: string, fallback: number, max: number): number {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new ConfigError(`${name} must be an integer from 1 to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}
