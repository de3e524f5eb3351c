/**
 * libfaketime (Debian package `faketime`, installed by .ci/run): runs a child
 * process whose wall clock is off by a given amount, while its monotonic
 * clock (performance.now, timers) stays true — a server whose clock is wrong.
 * Without the library the skew tests skip with a message; in CI they fail.
 */
import { existsSync } from "node:fs";

const LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

export const FAKETIME_AVAILABLE = existsSync(LIBRARY);

if (!FAKETIME_AVAILABLE) {
  const message = `libfaketime not found at ${LIBRARY} (apt-get install faketime): clock-skew tests SKIPPED`;
  if (process.env.CI === "true") throw new Error(`CI: ${message}`);
  console.warn(`jobwire tests: ${message}`);
}

/** The environment of a child whose wall clock is `offset` off, e.g. "+10m", "-2m". */
export function skewedClock(offset: string): NodeJS.ProcessEnv {
  return { LD_PRELOAD: LIBRARY, FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: "1" };
}
