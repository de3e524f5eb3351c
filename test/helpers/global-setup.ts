/**
 * Says loudly when the PostgreSQL suite is skipped, and refuses to skip it in CI.
 */
export default function setup(): void {
  if (process.env.JOBWIRE_TEST_POSTGRES_URL) {
    process.stdout.write(`jobwire tests: PostgreSQL suite ON (${process.env.JOBWIRE_TEST_POSTGRES_URL})\n`);
    return;
  }
  if (process.env.CI === "true") {
    throw new Error(
      "CI=true but JOBWIRE_TEST_POSTGRES_URL is not set: the PostgreSQL suite must run in CI " +
        "(e.g. JOBWIRE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test)",
    );
  }
  process.stdout.write(
    "\n*** jobwire tests: PostgreSQL suite SKIPPED — set JOBWIRE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test to run it ***\n\n",
  );
}
