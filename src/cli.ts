/**
 * The `jobwire` command.
 *
 *   jobwire migrate [--database URL]   apply pending migrations, then exit
 *   jobwire help                       usage
 *
 * Errors are one line on stderr and exit code 1 (2 for usage errors).
 */
import { ConfigError, DEFAULT_DATABASE_URL, ENVIRONMENT, parseConfig } from "./config.ts";
import { JobwireError } from "./jobs/errors.ts";
import { migrateDatabase, parseDatabaseUrl } from "./store/open-store.ts";

const USAGE = `jobwire — a durable job queue with a GraphQL control plane

Usage:
  jobwire migrate [--database URL]   apply pending database migrations and exit
  jobwire help                       show this help

Options:
  -d, --database URL        file:./jobwire.db (SQLite, default) or postgres://user@host:5432/db
      --pool-size N         PostgreSQL connection pool size (default 10)
      --max-payload-bytes N largest JSON payload accepted

Environment:
${Object.entries(ENVIRONMENT)
  .map(([k, v]) => `  ${k.padEnd(26)}${v}`)
  .join("\n")}

The GraphQL server (jobwire serve) arrives with the GraphQL API; see README.md.
Default database: ${DEFAULT_DATABASE_URL}
`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseConfig(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`jobwire: ${e.message}\nRun "jobwire help" for usage.\n`);
      return 2;
    }
    throw e;
  }
  const { config, positionals } = parsed;
  const command = positionals[0] ?? "help";
  switch (command) {
    case "help":
      process.stdout.write(USAGE);
      return 0;
    case "migrate": {
      const target = parseDatabaseUrl(config.databaseUrl);
      const where = target.dialect === "sqlite" ? target.filePath : redact(target.url);
      process.stdout.write(`jobwire: migrating ${target.dialect} database ${where}\n`);
      const started = Date.now();
      const result = await migrateDatabase(target, (message) => process.stdout.write(`jobwire: ${message}\n`));
      process.stdout.write(
        `jobwire: ${result.applied.length} migration(s) applied, ${result.alreadyApplied.length} already applied ` +
          `(${Date.now() - started} ms)\n`,
      );
      return 0;
    }
    default:
      process.stderr.write(`jobwire: unknown command ${JSON.stringify(command)}\nRun "jobwire help" for usage.\n`);
      return 2;
  }
}

/** Hides a password in a database URL before printing it. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@");
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  const message = e instanceof JobwireError ? e.message : e instanceof Error ? e.message : String(e);
  process.stderr.write(`jobwire: ${message.split("\n").find((l) => l.trim()) ?? message}\n`);
  process.exitCode = 1;
}
