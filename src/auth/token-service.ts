/**
 * API tokens: creation (a random 32-byte token, shown once; only its SHA-256
 * is stored), listing, revocation, and verification of a presented token.
 *
 * Verification reads an in-memory snapshot of the api_tokens table, re-read
 * every `refreshMs` (500 ms by default) while the service runs, so checking a
 * token costs no statement per request, and a token revoked anywhere (another
 * server process on the same PostgreSQL database, or the CLI) stops working
 * within one refresh. A token missing from the snapshot triggers one early
 * re-read (at most every `missRefreshMs`), so a token created a moment ago
 * works at once while a flood of bad tokens costs at most one read per window.
 * After each refresh the listeners run: the WebSocket server closes the
 * connections whose token is gone or expired.
 */
import { createHash, randomBytes } from "node:crypto";
import { coerceError, ValidationError } from "../jobs/errors.ts";
import type { ApiTokenRow, JobStore } from "../store/job-store.ts";
import { parseQueuePatterns, queueMatcher } from "./queue-patterns.ts";
import { isRole } from "./roles.ts";
import type { Role } from "./roles.ts";

/** Who is calling, as the guard sees it. */
export interface Principal {
  /** The token's name (the actor of events); null when auth is off. */
  readonly name: string | null;
  readonly role: Role;
  /** The token's queue patterns; empty = every queue. */
  readonly queues: readonly string[];
  /** null: every queue is in scope. */
  readonly inScope: ((queue: string) => boolean) | null;
  /** SHA-256 of the token (to find its sockets on revocation); null when auth is off. */
  readonly tokenHash: string | null;
}

/** Everyone, when the server runs with --auth off. */
export const OPEN_PRINCIPAL: Principal = Object.freeze({
  name: null,
  role: "admin",
  queues: [],
  inScope: null,
  tokenHash: null,
});

/** A token as the API shows it (never the token or its hash). */
export interface ApiTokenInfo {
  name: string;
  role: Role;
  queues: string[];
  createdAt: Date;
  expiresAt: Date | null;
}

export interface CreatedApiToken {
  /** The bearer token, shown once. */
  token: string;
  apiToken: ApiTokenInfo;
}

export interface CreateTokenInput {
  name: string;
  role: string;
  queues?: readonly string[];
  /** Seconds from now; undefined: never expires. */
  expiresInSeconds?: number;
}

export interface TokenServiceOptions {
  now?: () => Date;
  /** How often the snapshot is re-read while started (ms). */
  refreshMs?: number;
  /** Least time between two re-reads caused by unknown tokens (ms). */
  missRefreshMs?: number;
  onError?: (error: Error) => void;
}

const TOKEN_PREFIX = "jw_";
const NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;
const MAX_EXPIRY_SECONDS = 10 * 366 * 24 * 3600;

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/**
 * The token of an `Authorization: Bearer <token>` value (scheme
 * case-insensitive). undefined: no header; null: a header that is not a
 * bearer token.
 */
export function parseBearer(header: string | undefined | null): string | null | undefined {
  if (header === undefined || header === null || header === "") return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1] ?? null;
}

/** "30d", "12h", "45m", "90s" or a plain number of seconds → seconds. */
export function parseDuration(text: string, field = "--expires"): number {
  const match = /^(\d+)\s*([smhdw]?)$/i.exec(text.trim());
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[(match?.[2] ?? "").toLowerCase()];
  const seconds = match && unit !== undefined ? Number(match[1]) * unit : NaN;
  if (!Number.isSafeInteger(seconds) || seconds < 1 || seconds > MAX_EXPIRY_SECONDS) {
    throw new ValidationError(
      field,
      `must be a duration like 90s, 45m, 12h, 30d or 2w (at most 10 years), got ${JSON.stringify(text)}`,
    );
  }
  return seconds;
}

function info(row: ApiTokenRow): ApiTokenInfo {
  return {
    name: row.name,
    role: isRole(row.role) ? row.role : "viewer",
    queues: row.queues,
    createdAt: row.createdAt,
    expiresAt: row.expiresAt,
  };
}

export class TokenService {
  private readonly now: () => Date;
  private readonly refreshMs: number;
  private readonly missRefreshMs: number;
  private readonly onError: (error: Error) => void;
  private snapshot = new Map<string, { row: ApiTokenRow; principal: Principal }>();
  private readAt = -Infinity;
  private reading: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly store: JobStore,
    options: TokenServiceOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.refreshMs = options.refreshMs ?? 500;
    this.missRefreshMs = options.missRefreshMs ?? 100;
    this.onError = options.onError ?? ((e) => console.error("jobwire: reading API tokens failed", e));
  }

  /** Reads the tokens once, then every refreshMs until stop(). */
  async start(): Promise<void> {
    await this.refresh();
    const tick = () => {
      this.refresh().then(
        () => {
          if (this.timer) this.timer = setTimeout(tick, this.refreshMs);
        },
        (e: unknown) => {
          this.onError(coerceError(e));
          if (this.timer) this.timer = setTimeout(tick, this.refreshMs);
        },
      );
    };
    this.timer = setTimeout(tick, this.refreshMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.reading?.catch(() => {});
  }

  /** Runs `listener` after every refresh (revocation checks). Returns the unsubscribe. */
  onRefresh(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads the table (one read at a time; callers during a read share it). */
  refresh(): Promise<void> {
    this.reading ??= (async () => {
      try {
        const rows = await this.store.listApiTokens();
        const next = new Map<string, { row: ApiTokenRow; principal: Principal }>();
        for (const row of rows) {
          if (!isRole(row.role)) continue; // written by a newer version: not ours to honour
          next.set(row.tokenHash, {
            row,
            principal: Object.freeze({
              name: row.name,
              role: row.role,
              queues: row.queues,
              inScope: queueMatcher(row.queues),
              tokenHash: row.tokenHash,
            }),
          });
        }
        this.snapshot = next;
        this.readAt = performance.now();
      } finally {
        this.reading = null;
      }
      for (const listener of this.listeners) {
        try {
          listener();
        } catch (e) {
          this.onError(coerceError(e));
        }
      }
    })();
    return this.reading;
  }

  /** The principal of a presented token; null when it is unknown, revoked or expired. */
  async verify(token: string): Promise<Principal | null> {
    if (!token.startsWith(TOKEN_PREFIX)) return null;
    const hash = hashToken(token);
    let entry = this.snapshot.get(hash);
    if (!entry && performance.now() - this.readAt >= this.missRefreshMs) {
      await this.refresh();
      entry = this.snapshot.get(hash);
    }
    // No constant-time compare is needed: the lookup is by SHA-256 of the
    // presented token, so its timing says nothing about any stored token's
    // bytes (a guess would have to find a preimage).
    if (!entry) return null;
    return this.isLive(hash) ? entry.principal : null;
  }

  /** True while the token with this hash exists and has not expired (as of the last refresh). */
  isLive(tokenHash: string): boolean {
    const entry = this.snapshot.get(tokenHash);
    if (!entry) return false;
    return entry.row.expiresAt === null || entry.row.expiresAt.getTime() > this.now().getTime();
  }

  async create(input: CreateTokenInput): Promise<CreatedApiToken> {
    if (typeof input.name !== "string" || !NAME_PATTERN.test(input.name)) {
      throw new ValidationError("name", "must be 1 to 100 letters, digits and _ . : -");
    }
    if (!isRole(input.role)) throw new ValidationError("role", "must be admin, producer, worker or viewer");
    const queues = parseQueuePatterns(input.queues ?? []);
    if (
      input.expiresInSeconds !== undefined &&
      (!Number.isSafeInteger(input.expiresInSeconds) ||
        input.expiresInSeconds < 1 ||
        input.expiresInSeconds > MAX_EXPIRY_SECONDS)
    ) {
      throw new ValidationError("expiresInSeconds", `must be an integer from 1 to ${MAX_EXPIRY_SECONDS}`);
    }
    const token = TOKEN_PREFIX + randomBytes(32).toString("base64url");
    const now = this.now();
    const row = await this.store.insertApiToken({
      name: input.name,
      tokenHash: hashToken(token),
      role: input.role,
      queues,
      createdAt: now,
      expiresAt: input.expiresInSeconds === undefined ? null : new Date(now.getTime() + input.expiresInSeconds * 1000),
    });
    if (!row) throw new ValidationError("name", `a token named ${input.name} exists already`);
    if (this.timer) await this.refresh();
    return { token, apiToken: info(row) };
  }

  async list(): Promise<ApiTokenInfo[]> {
    return (await this.store.listApiTokens()).map(info);
  }

  /** Deletes the token; its requests and sockets stop within a refresh (at once on this server). */
  async revoke(name: string): Promise<boolean> {
    if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
      throw new ValidationError("name", "must be 1 to 100 letters, digits and _ . : -");
    }
    const deleted = await this.store.deleteApiToken(name);
    if (deleted && this.timer) await this.refresh();
    return deleted;
  }
}
