/**
 * The `jobwire` command.
 *
 *   jobwire serve [options]            migrate, then serve the GraphQL API until SIGTERM/SIGINT
 *   jobwire migrate [--database URL]   apply pending migrations, then exit
 *   jobwire token create|list|revoke   manage API tokens (src/auth/)
 *   jobwire help                       usage
 *   jobwire version (or --version)     the installed version
 *
 * Errors are one line on stderr and exit code 1 (2 for usage errors).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, ENVIRONMENT, parseConfig } from "./config.ts";
import type { Config } from "./config.ts";
import { DEFAULT_QUERY_LIMITS } from "./graphql/limits.ts";
import { JobwireError } from "./jobs/errors.ts";
import { SERVER_DEFAULTS } from "./server/defaults.ts";
import { createLogger } from "./server/logger.ts";
import type { JobStore } from "./store/job-store.ts";
import { migrateDatabase, openStore, parseDatabaseUrl } from "./store/open-store.ts";

/** Width of the variable names in the help's Environment list (the longest, plus two spaces). */
const ENV_NAME_WIDTH = Math.max(30, ...Object.keys(ENVIRONMENT).map((name) => name.length + 2));

const USAGE = `jobwire — a durable job queue with a GraphQL control plane

Usage:
  jobwire serve [options]            apply pending migrations, then serve the GraphQL API
                                     at http://HOST:PORT/graphql until SIGTERM or SIGINT
  jobwire migrate [--database URL]   apply pending database migrations and exit
  jobwire token create --name N --role admin|producer|worker|viewer [--queues 'email,reports.*'] [--expires 30d]
                                     create an API token and print it (shown this once)
  jobwire token list                 list API tokens (names, roles, queues; never the tokens)
  jobwire token revoke NAME          revoke a token: it stops working within a second
  jobwire help                       show this help
  jobwire version                    print the version (also --version, -v)

Options:
  -d, --database URL          file:./jobwire.db (SQLite, default) or postgres://user@host:5432/db
      --pool-size N           PostgreSQL connection pool size (default 10)
      --max-payload-bytes N   largest JSON payload, result, progress or metadata
  -p, --port N                serve: TCP port (default ${SERVER_DEFAULTS.port}; 0 picks a free one)
      --host HOST             serve: interface to listen on (default ${SERVER_DEFAULTS.host})
      --introspection BOOL    serve: answer introspection queries (default true)
      --max-body-bytes N      serve: largest request body (default ${SERVER_DEFAULTS.maxBodyBytes})
      --max-query-depth N     serve: deepest query nesting (default ${DEFAULT_QUERY_LIMITS.maxDepth})
      --max-query-cost N      serve: costliest query (default ${DEFAULT_QUERY_LIMITS.maxCost})
      --max-mutation-fields N serve: most root fields (aliases included) of one mutation (default ${DEFAULT_QUERY_LIMITS.maxMutationFields})
      --shutdown-grace-ms N   serve: how long shutdown waits for in-flight requests (default ${SERVER_DEFAULTS.shutdownGraceMs})
      --subscription-buffer N serve: live events a subscription may have unread (unsent, or sent
                              and not confirmed read) before it is ended with SUBSCRIPTION_OVERFLOW
                              (default ${SERVER_DEFAULTS.subscriptionBuffer})
      --max-connections N     serve: WebSocket connections open at once; a handshake beyond gets
                              HTTP 503 (default ${SERVER_DEFAULTS.maxConnections})
      --max-connections-per-ip N
                              serve: WebSocket connections open at once from one remote address;
                              a handshake beyond gets HTTP 429 (default ${SERVER_DEFAULTS.maxConnectionsPerIp})
      --max-subscriptions-per-socket N
                              serve: subscriptions at once on one WebSocket; one more gets
                              TOO_MANY_SUBSCRIPTIONS (default ${SERVER_DEFAULTS.maxSubscriptionsPerSocket})
      --ws-init-timeout-ms N  serve: time a WebSocket client has to send connection_init (default ${SERVER_DEFAULTS.wsInitTimeoutMs})
      --ws-keepalive-ms N     serve: WebSocket keep-alive ping interval; a client that has not
                              answered by the next one is closed with 4408 stalled; 0 turns it off (default ${SERVER_DEFAULTS.wsKeepAliveMs})
      --metrics BOOL          serve: GET /metrics in Prometheus text format (default true)
      --auth MODE             serve: required (every call needs an API token) or off; default off on
                              a loopback host (127.0.0.1, ::1, localhost), required anywhere else
      --allowed-origins LIST  serve: browser origins (https://app.example.com,…) allowed besides the
                              server's own, for CORS and WebSocket handshakes (default none)
      --log-level LEVEL       fatal, error, warn, info (default), debug, trace or silent
      --log-format FORMAT     pretty or json (default: pretty on a terminal, else json)
      --otlp-endpoint URL     serve: export OpenTelemetry traces over OTLP/HTTP to URL/v1/traces
                              (e.g. http://127.0.0.1:4318; default: tracing off)

Environment (flags win):
${Object.entries(ENVIRONMENT)
  .map(([k, v]) => `  ${k.padEnd(ENV_NAME_WIDTH)}${v}`)
  .join("\n")}

Health: GET /healthz (the process answers), GET /readyz (the database answers, is migrated and takes writes).
Metrics: GET /metrics (Prometheus text format; --metrics false turns it off).
`;

/** Flags only `token create` takes; taken out of argv before the shared flags are parsed. */
const TOKEN_FLAGS = ["name", "role", "queues", "expires"] as const;
type TokenFlags = Partial<Record<(typeof TOKEN_FLAGS)[number], string>>;

function takeTokenFlags(argv: string[]): { rest: string[]; flags: TokenFlags } {
  if (argv[0] !== "token") return { rest: argv, flags: {} };
  const rest: string[] = [];
  const flags: TokenFlags = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const flag = TOKEN_FLAGS.find((f) => arg === `--${f}` || arg.startsWith(`--${f}=`));
    if (!flag) {
      rest.push(arg);
      continue;
    }
    if (arg.includes("=")) flags[flag] = arg.slice(arg.indexOf("=") + 1);
    else {
      const value = argv[++i];
      if (value === undefined) throw new ConfigError(`--${flag} needs a value`);
      flags[flag] = value;
    }
  }
  return { rest, flags };
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  let tokenFlags: TokenFlags;
  try {
    const taken = takeTokenFlags(argv);
    tokenFlags = taken.flags;
    parsed = parseConfig(taken.rest);
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
    case "version":
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
    case "serve":
      return serve(config);
    case "token":
      return token(config, tokenFlags, positionals.slice(1));
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

async function token(config: Config, flags: TokenFlags, args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== "create" && action !== "list" && action !== "revoke") {
    process.stderr.write(`jobwire: token needs create, list or revoke\nRun "jobwire help" for usage.\n`);
    return 2;
  }
  const { TokenService, parseDuration } = await import("./auth/token-service.ts");
  const { splitQueuePatterns } = await import("./auth/queue-patterns.ts");
  // Validate flags before touching the database.
  let input: Parameters<InstanceType<typeof TokenService>["create"]>[0] | null = null;
  if (action === "create") {
    if (!flags.name || !flags.role) {
      process.stderr.write(`jobwire: token create needs --name and --role\nRun "jobwire help" for usage.\n`);
      return 2;
    }
    input = {
      name: flags.name,
      role: flags.role,
      ...(flags.queues !== undefined && { queues: splitQueuePatterns(flags.queues) }),
      ...(flags.expires !== undefined && { expiresInSeconds: parseDuration(flags.expires) }),
    };
  }
  if (action === "revoke" && rest.length !== 1) {
    process.stderr.write(`jobwire: token revoke needs one NAME\n`);
    return 2;
  }
  const store = await openStore(config.databaseUrl, { poolSize: 1 });
  try {
    const tokens = new TokenService(store);
    if (input) {
      const created = await tokens.create(input);
      const t = created.apiToken;
      process.stderr.write(
        `jobwire: created token ${t.name} (${t.role}, queues ${t.queues.length ? t.queues.join(",") : "all"}, ` +
          `expires ${t.expiresAt ? t.expiresAt.toISOString() : "never"}). It is shown this once:\n`,
      );
      process.stdout.write(`${created.token}\n`);
      return 0;
    }
    if (action === "list") {
      const all = await tokens.list();
      const now = Date.now();
      process.stdout.write(`${["NAME", "ROLE", "QUEUES", "CREATED", "EXPIRES"].join("\t")}\n`);
      for (const t of all) {
        const expires = t.expiresAt
          ? `${t.expiresAt.toISOString()}${t.expiresAt.getTime() <= now ? " (expired)" : ""}`
          : "never";
        const queues = t.queues.length ? t.queues.join(",") : "*";
        process.stdout.write(`${[t.name, t.role, queues, t.createdAt.toISOString(), expires].join("\t")}\n`);
      }
      return 0;
    }
    const name = rest[0] ?? "";
    if (!(await tokens.revoke(name))) {
      process.stderr.write(`jobwire: no token named ${JSON.stringify(name)}\n`);
      return 1;
    }
    process.stdout.write(`jobwire: revoked token ${name}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

/**
 * The version in jobwire's package.json: two folders up from src/cli.ts, three
 * from the compiled dist/src/cli.js, so look upwards for it.
 */
function packageVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "jobwire" && pkg.version) return pkg.version;
    }
    if (dirname(dir) === dir) throw new Error("jobwire: no package.json of jobwire above the running file");
  }
}

async function serve(config: Config): Promise<number> {
  const logger = createLogger({
    level: config.logLevel,
    ...(config.logPretty !== null && { pretty: config.logPretty }),
  });
  const target = parseDatabaseUrl(config.databaseUrl);
  const where = target.dialect === "sqlite" ? target.filePath : redact(target.url);
  logger.info({ dialect: target.dialect, database: where }, `opening ${target.dialect} database ${where}`);
  let store: JobStore;
  try {
    store = await openStore(config.databaseUrl, {
      poolSize: config.poolSize,
      progress: (message) => logger.info(message),
    });
  } catch (e) {
    throw new Error(`cannot open database ${where}: ${firstLine(e)}`, { cause: e });
  }
  // Loaded only for serve, so migrate and help start fast.
  const { startServer } = await import("./server/server.ts");
  // The OpenTelemetry SDK is loaded only when an endpoint is set: tracing off costs nothing.
  let stopTracing: (() => Promise<void>) | null = null;
  if (config.otlpEndpoint !== null) {
    const { startTracing } = await import("./server/tracing.ts");
    stopTracing = await startTracing({ endpoint: config.otlpEndpoint, serviceName: "jobwire" });
    logger.info({ endpoint: config.otlpEndpoint }, `exporting traces to ${config.otlpEndpoint}`);
  }
  let server;
  try {
    server = await startServer({
      store,
      logger,
      port: config.port,
      host: config.host,
      introspection: config.introspection,
      limits: {
        maxDepth: config.maxQueryDepth,
        maxCost: config.maxQueryCost,
        maxMutationFields: config.maxMutationFields,
      },
      maxBodyBytes: config.maxBodyBytes,
      maxPayloadBytes: config.maxPayloadBytes,
      shutdownGraceMs: config.shutdownGraceMs,
      databaseUrl: config.databaseUrl,
      subscriptionBuffer: config.subscriptionBuffer,
      maxConnections: config.maxConnections,
      maxConnectionsPerIp: config.maxConnectionsPerIp,
      maxSubscriptionsPerSocket: config.maxSubscriptionsPerSocket,
      wsInitTimeoutMs: config.wsInitTimeoutMs,
      wsKeepAliveMs: config.wsKeepAliveMs,
      metrics: config.metrics,
      ...(config.auth !== null && { auth: config.auth }),
      allowedOrigins: config.allowedOrigins,
    });
  } catch (e) {
    await store.close().catch(() => {});
    await stopTracing?.().catch(() => {});
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE")
      throw new Error(`${config.host}:${config.port} is in use; pick another port with --port`);
    if (code === "EADDRNOTAVAIL") throw new Error(`cannot listen on ${config.host}: no such local address (--host)`);
    throw e;
  }
  const running = server;
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, `${signal} during shutdown: exiting without waiting`);
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, `${signal}: stopping (send it again to exit at once)`);
      running.close().then(
        () => {
          process.off("SIGTERM", onSignal);
          process.off("SIGINT", onSignal);
          resolve();
        },
        (e: unknown) => {
          logger.error({ err: e }, "shutdown failed");
          process.exitCode = 1;
          resolve();
        },
      );
    };
    // Handlers first: a supervisor may signal as soon as it reads the line below.
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    logger.info({ url: running.url, auth: running.auth }, `jobwire listening on ${running.url}`);
  });
  // After the server closed: the spans of its last requests are flushed too.
  await stopTracing?.().catch((e: unknown) => logger.warn({ err: e }, "flushing traces failed"));
  return typeof process.exitCode === "number" ? process.exitCode : 0;
}

function firstLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.split("\n").find((l) => l.trim()) ?? message;
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
