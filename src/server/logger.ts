/**
 * Structured logs: one JSON object per line (pino), or readable colour lines
 * when stdout is a terminal (pino-pretty, in pino's worker thread).
 */
import { pino } from "pino";
import type { Logger } from "pino";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  level?: LogLevel;
  /** Readable output (default: when stdout is a terminal). */
  pretty?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  return pino({
    name: "jobwire",
    level: options.level ?? "info",
    ...(pretty && {
      transport: {
        target: "pino-pretty",
        options: { colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,name" },
      },
    }),
  });
}
