/**
 * Queue patterns of an API token: a queue name, or a name with `*` standing
 * for any run of characters (`reports.*` matches `reports.daily` and
 * `reports.eu.weekly`). An empty list means every queue.
 */
import { ValidationError } from "../jobs/errors.ts";
import { LIMITS } from "../jobs/limits.ts";

/** Most patterns on one token. */
export const MAX_QUEUE_PATTERNS = 100;

/** Checks and normalises patterns (trimmed, deduplicated, in the given order). */
export function parseQueuePatterns(value: readonly string[], field = "queues"): string[] {
  if (value.length > MAX_QUEUE_PATTERNS) throw new ValidationError(field, `at most ${MAX_QUEUE_PATTERNS} patterns`);
  const out: string[] = [];
  for (const raw of value) {
    const pattern = raw.trim();
    if (pattern.length === 0 || pattern.length > LIMITS.queueNameMaxLength) {
      throw new ValidationError(
        field,
        `pattern ${JSON.stringify(raw)} must be 1 to ${LIMITS.queueNameMaxLength} characters`,
      );
    }
    if (!LIMITS.queueNamePattern.test(pattern.replaceAll("*", "x"))) {
      throw new ValidationError(
        field,
        `pattern ${JSON.stringify(raw)} may contain only letters, digits, _ . : - and *`,
      );
    }
    if (!out.includes(pattern)) out.push(pattern);
  }
  return out;
}

/** Splits the CLI's comma-separated form ('email,reports.*'). */
export function splitQueuePatterns(list: string, field = "--queues"): string[] {
  return parseQueuePatterns(
    list
      .split(",")
      .map((p) => p.trim())
      .filter((p) => p.length > 0),
    field,
  );
}

/** A predicate over queue names; null when the patterns allow every queue. */
export function queueMatcher(patterns: readonly string[]): ((queue: string) => boolean) | null {
  if (patterns.length === 0) return null;
  const exact = new Set(patterns.filter((p) => !p.includes("*")));
  const wild = patterns
    .filter((p) => p.includes("*"))
    .map((p) => new RegExp(`^${p.split("*").map(escapeRegExp).join(".*")}$`));
  return (queue) => exact.has(queue) || wild.some((re) => re.test(queue));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
