/**
 * parseConfig: defaults, every flag, every JOBWIRE_* variable, precedence
 * (flag > environment > default) and the errors for bad values. The
 * environment is always passed explicitly, so the test runner's own
 * variables never leak in.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, ENVIRONMENT, parseConfig } from "../../src/config.ts";
import type { Config } from "../../src/config.ts";

const DEFAULTS: Config = {
  databaseUrl: "file:./jobwire.db",
  poolSize: 10,
  maxPayloadBytes: 256 * 1024,
  port: 4000,
  host: "127.0.0.1",
  introspection: true,
  maxBodyBytes: 8 * 1024 * 1024,
  maxQueryDepth: 12,
  maxQueryCost: 50_000,
  maxMutationFields: 50,
  shutdownGraceMs: 10_000,
  subscriptionBuffer: 1_000,
  maxConnections: 10_000,
  maxConnectionsPerIp: 1_000,
  maxSubscriptionsPerSocket: 100,
  wsInitTimeoutMs: 3_000,
  wsKeepAliveMs: 12_000,
  metrics: true,
  auth: null,
  allowedOrigins: [],
  logLevel: "info",
  logPretty: null,
  otlpEndpoint: null,
};

/** The ConfigError parseConfig throws, or a failure when it throws nothing (or something else). */
function configError(argv: string[], env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    parseConfig(argv, env);
  } catch (e) {
    expect(e, `${argv.join(" ")} ${JSON.stringify(env)}`).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`parseConfig(${JSON.stringify(argv)}, ${JSON.stringify(env)}) did not throw`);
}

/**
 * One row per option: its flag, its environment variable, the Config key it
 * sets, a raw value with what it parses to, and a second one (to show that
 * the flag beats the variable).
 */
const OPTIONS: {
  flag: string;
  env: keyof typeof ENVIRONMENT;
  key: keyof Config;
  raw: string;
  value: Config[keyof Config];
  other: string;
  otherValue: Config[keyof Config];
}[] = [
  {
    flag: "--database",
    env: "JOBWIRE_DATABASE_URL",
    key: "databaseUrl",
    raw: "postgres://u@db:5432/jobs",
    value: "postgres://u@db:5432/jobs",
    other: "file:./other.db",
    otherValue: "file:./other.db",
  },
  { flag: "--pool-size", env: "JOBWIRE_POOL_SIZE", key: "poolSize", raw: "25", value: 25, other: "3", otherValue: 3 },
  {
    flag: "--max-payload-bytes",
    env: "JOBWIRE_MAX_PAYLOAD_BYTES",
    key: "maxPayloadBytes",
    raw: "1024",
    value: 1024,
    other: "2048",
    otherValue: 2048,
  },
  { flag: "--port", env: "JOBWIRE_PORT", key: "port", raw: "8080", value: 8080, other: "0", otherValue: 0 },
  {
    flag: "--host",
    env: "JOBWIRE_HOST",
    key: "host",
    raw: "0.0.0.0",
    value: "0.0.0.0",
    other: "::1",
    otherValue: "::1",
  },
  {
    flag: "--introspection",
    env: "JOBWIRE_INTROSPECTION",
    key: "introspection",
    raw: "false",
    value: false,
    other: "true",
    otherValue: true,
  },
  {
    flag: "--metrics",
    env: "JOBWIRE_METRICS",
    key: "metrics",
    raw: "off",
    value: false,
    other: "yes",
    otherValue: true,
  },
  {
    flag: "--auth",
    env: "JOBWIRE_AUTH",
    key: "auth",
    raw: "off",
    value: "off",
    other: "required",
    otherValue: "required",
  },
  {
    flag: "--allowed-origins",
    env: "JOBWIRE_ALLOWED_ORIGINS",
    key: "allowedOrigins",
    raw: "https://app.example.com, http://localhost:5173/",
    value: ["https://app.example.com", "http://localhost:5173"],
    other: "https://ops.example.com",
    otherValue: ["https://ops.example.com"],
  },
  {
    flag: "--max-body-bytes",
    env: "JOBWIRE_MAX_BODY_BYTES",
    key: "maxBodyBytes",
    raw: "65536",
    value: 65_536,
    other: "1",
    otherValue: 1,
  },
  {
    flag: "--max-query-depth",
    env: "JOBWIRE_MAX_QUERY_DEPTH",
    key: "maxQueryDepth",
    raw: "5",
    value: 5,
    other: "40",
    otherValue: 40,
  },
  {
    flag: "--max-query-cost",
    env: "JOBWIRE_MAX_QUERY_COST",
    key: "maxQueryCost",
    raw: "900",
    value: 900,
    other: "1000000",
    otherValue: 1_000_000,
  },
  {
    flag: "--max-mutation-fields",
    env: "JOBWIRE_MAX_MUTATION_FIELDS",
    key: "maxMutationFields",
    raw: "5",
    value: 5,
    other: "200",
    otherValue: 200,
  },
  {
    flag: "--shutdown-grace-ms",
    env: "JOBWIRE_SHUTDOWN_GRACE_MS",
    key: "shutdownGraceMs",
    raw: "0",
    value: 0,
    other: "2500",
    otherValue: 2_500,
  },
  {
    flag: "--subscription-buffer",
    env: "JOBWIRE_SUBSCRIPTION_BUFFER",
    key: "subscriptionBuffer",
    raw: "50",
    value: 50,
    other: "1000000",
    otherValue: 1_000_000,
  },
  {
    flag: "--max-connections",
    env: "JOBWIRE_MAX_CONNECTIONS",
    key: "maxConnections",
    raw: "20",
    value: 20,
    other: "1000000",
    otherValue: 1_000_000,
  },
  {
    flag: "--max-connections-per-ip",
    env: "JOBWIRE_MAX_CONNECTIONS_PER_IP",
    key: "maxConnectionsPerIp",
    raw: "1",
    value: 1,
    other: "5000",
    otherValue: 5_000,
  },
  {
    flag: "--max-subscriptions-per-socket",
    env: "JOBWIRE_MAX_SUBSCRIPTIONS_PER_SOCKET",
    key: "maxSubscriptionsPerSocket",
    raw: "3",
    value: 3,
    other: "100000",
    otherValue: 100_000,
  },
  {
    flag: "--ws-init-timeout-ms",
    env: "JOBWIRE_WS_INIT_TIMEOUT_MS",
    key: "wsInitTimeoutMs",
    raw: "1",
    value: 1,
    other: "60000",
    otherValue: 60_000,
  },
  {
    flag: "--ws-keepalive-ms",
    env: "JOBWIRE_WS_KEEPALIVE_MS",
    key: "wsKeepAliveMs",
    raw: "0",
    value: 0,
    other: "3600000",
    otherValue: 3_600_000,
  },
  {
    flag: "--log-level",
    env: "JOBWIRE_LOG_LEVEL",
    key: "logLevel",
    raw: "debug",
    value: "debug",
    other: "silent",
    otherValue: "silent",
  },
  {
    flag: "--log-format",
    env: "JOBWIRE_LOG_FORMAT",
    key: "logPretty",
    raw: "json",
    value: false,
    other: "pretty",
    otherValue: true,
  },
  {
    flag: "--otlp-endpoint",
    env: "OTEL_EXPORTER_OTLP_ENDPOINT",
    key: "otlpEndpoint",
    raw: "http://127.0.0.1:4318",
    value: "http://127.0.0.1:4318",
    other: "https://otel.example.com/base",
    otherValue: "https://otel.example.com/base",
  },
];

describe("parseConfig", () => {
  it("defaults: SQLite in ./jobwire.db, port 4000 on 127.0.0.1, no positionals", () => {
    expect(parseConfig([], {})).toEqual({ config: DEFAULTS, positionals: [] });
  });

  it("the option table covers every documented JOBWIRE_* variable and every Config key", () => {
    expect(OPTIONS.map((o) => o.env).sort()).toEqual(Object.keys(ENVIRONMENT).sort());
    expect(OPTIONS.map((o) => o.key).sort()).toEqual(Object.keys(DEFAULTS).sort());
  });

  it.each(OPTIONS)("$flag sets $key", ({ flag, key, raw, value }) => {
    expect(parseConfig([flag, raw], {}).config).toEqual({ ...DEFAULTS, [key]: value });
    expect(parseConfig([`${flag}=${raw}`], {}).config).toEqual({ ...DEFAULTS, [key]: value });
  });

  it.each(OPTIONS)("$env sets $key", ({ env, key, raw, value }) => {
    expect(parseConfig([], { [env]: raw }).config).toEqual({ ...DEFAULTS, [key]: value });
  });

  it.each(OPTIONS)("$flag beats $env", ({ flag, env, key, raw, value, other, otherValue }) => {
    expect(parseConfig([flag, raw], { [env]: other }).config).toEqual({ ...DEFAULTS, [key]: value });
    expect(parseConfig([flag, other], { [env]: raw }).config).toEqual({ ...DEFAULTS, [key]: otherValue });
  });

  it("every flag and every variable at once", () => {
    const argv = OPTIONS.flatMap((o) => [o.flag, o.raw]);
    const env = Object.fromEntries(OPTIONS.map((o) => [o.env, o.other]));
    const fromFlags = Object.fromEntries(OPTIONS.map((o) => [o.key, o.value]));
    const fromEnv = Object.fromEntries(OPTIONS.map((o) => [o.key, o.otherValue]));
    expect(parseConfig(["serve", ...argv], env)).toEqual({ config: fromFlags, positionals: ["serve"] });
    expect(parseConfig(["serve"], env)).toEqual({ config: fromEnv, positionals: ["serve"] });
  });

  it("short flags: -d, -p, -h", () => {
    const { config, positionals } = parseConfig(["serve", "-d", "file:/tmp/x.db", "-p", "9000"], {});
    expect(config).toEqual({ ...DEFAULTS, databaseUrl: "file:/tmp/x.db", port: 9000 });
    expect(positionals).toEqual(["serve"]);
    expect(parseConfig(["-h"], {}).positionals).toEqual(["help"]);
  });

  it("an empty variable means unset: the default applies", () => {
    const env = Object.fromEntries(OPTIONS.filter((o) => o.env !== "JOBWIRE_HOST").map((o) => [o.env, ""] as const));
    expect(parseConfig([], env).config).toEqual(DEFAULTS);
  });

  it("accepts the documented spellings of booleans, levels and formats", () => {
    for (const yes of ["true", "TRUE", "1", "yes", "on"]) {
      expect(parseConfig(["--introspection", yes], {}).config.introspection, yes).toBe(true);
    }
    for (const no of ["false", "False", "0", "no", "off"]) {
      expect(parseConfig(["--introspection", no], {}).config.introspection, no).toBe(false);
    }
    for (const level of ["fatal", "error", "warn", "info", "debug", "trace", "silent"]) {
      expect(parseConfig(["--log-level", level], {}).config.logLevel).toBe(level);
    }
    expect(parseConfig(["--log-format", "pretty"], {}).config.logPretty).toBe(true);
    expect(parseConfig(["--log-format", "json"], {}).config.logPretty).toBe(false);
  });

  it("accepts the bounds of every range", () => {
    const bounds: [string, string, keyof Config, number][] = [
      ["--port", "0", "port", 0],
      ["--port", "65535", "port", 65_535],
      ["--pool-size", "1", "poolSize", 1],
      ["--pool-size", "1000", "poolSize", 1_000],
      ["--max-body-bytes", "1", "maxBodyBytes", 1],
      ["--max-body-bytes", String(1024 * 1024 * 1024), "maxBodyBytes", 1024 * 1024 * 1024],
      ["--max-payload-bytes", String(64 * 1024 * 1024), "maxPayloadBytes", 64 * 1024 * 1024],
      ["--max-query-depth", "1000", "maxQueryDepth", 1_000],
      ["--max-query-cost", "1000000000", "maxQueryCost", 1_000_000_000],
      ["--shutdown-grace-ms", "3600000", "shutdownGraceMs", 3_600_000],
      ["--subscription-buffer", "1", "subscriptionBuffer", 1],
      ["--max-connections", "1", "maxConnections", 1],
      ["--max-connections", "1000000", "maxConnections", 1_000_000],
      ["--max-connections-per-ip", "1000000", "maxConnectionsPerIp", 1_000_000],
      ["--max-subscriptions-per-socket", "1", "maxSubscriptionsPerSocket", 1],
      ["--max-subscriptions-per-socket", "100000", "maxSubscriptionsPerSocket", 100_000],
      ["--ws-init-timeout-ms", "3600000", "wsInitTimeoutMs", 3_600_000],
    ];
    for (const [flag, raw, key, value] of bounds) {
      expect(parseConfig([flag, raw], {}).config[key], `${flag} ${raw}`).toBe(value);
    }
  });

  it("bad values: a ConfigError that names the flag and shows the value", () => {
    const bad: [string[], string][] = [
      [["--port=-1"], '--port must be an integer from 0 to 65535, got "-1"'],
      [["--port", "65536"], '--port must be an integer from 0 to 65535, got "65536"'],
      [["--port", "abc"], '--port must be an integer from 0 to 65535, got "abc"'],
      [["--port", "80.5"], '--port must be an integer from 0 to 65535, got "80.5"'],
      [["--introspection", "maybe"], '--introspection must be true or false, got "maybe"'],
      [["--otlp-endpoint", "127.0.0.1:4318"], '--otlp-endpoint must be an http(s) URL, got "127.0.0.1:4318"'],
      [["--otlp-endpoint", "not a url"], '--otlp-endpoint must be an http(s) URL, got "not a url"'],
      [
        ["--log-level", "loud"],
        '--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      ],
      [["--log-format", "xml"], '--log-format must be pretty or json, got "xml"'],
      [["--max-body-bytes", "0"], '--max-body-bytes must be an integer from 1 to 1073741824, got "0"'],
      [["--pool-size", "1001"], '--pool-size must be an integer from 1 to 1000, got "1001"'],
      [["--subscription-buffer", "0"], '--subscription-buffer must be an integer from 1 to 1000000, got "0"'],
      [["--max-connections", "0"], '--max-connections must be an integer from 1 to 1000000, got "0"'],
      [
        ["--max-connections-per-ip", "1000001"],
        '--max-connections-per-ip must be an integer from 1 to 1000000, got "1000001"',
      ],
      [
        ["--max-subscriptions-per-socket", "100001"],
        '--max-subscriptions-per-socket must be an integer from 1 to 100000, got "100001"',
      ],
      [["--ws-init-timeout-ms", "0"], '--ws-init-timeout-ms must be an integer from 1 to 3600000, got "0"'],
      [["--ws-keepalive-ms=-1"], '--ws-keepalive-ms must be an integer from 0 to 3600000, got "-1"'],
      [["--pool-size", "2.5"], '--pool-size must be an integer from 1 to 1000, got "2.5"'],
      [["--max-payload-bytes=-5"], '--max-payload-bytes must be an integer from 1 to 67108864, got "-5"'],
      [["--max-query-depth", "0"], '--max-query-depth must be an integer from 1 to 1000, got "0"'],
      [["--max-query-cost", "lots"], '--max-query-cost must be an integer from 1 to 1000000000, got "lots"'],
      [["--shutdown-grace-ms", "3600001"], '--shutdown-grace-ms must be an integer from 0 to 3600000, got "3600001"'],
      [["--host", ""], "--host must not be empty"],
      [["--host", "   "], "--host must not be empty"],
    ];
    for (const [argv, message] of bad) {
      expect(configError(argv).message, argv.join(" ")).toBe(message);
    }
  });

  // Number() alone would take "1e3", "0x10" and " 5 " as 1000, 16 and 5.
  it("integer options take decimal digits only, like --port", () => {
    for (const flag of [
      "--pool-size",
      "--max-payload-bytes",
      "--max-body-bytes",
      "--max-query-depth",
      "--max-query-cost",
      "--max-mutation-fields",
      "--max-connections",
      "--max-connections-per-ip",
      "--max-subscriptions-per-socket",
    ]) {
      for (const raw of ["1e3", "0x10", "1_000"]) {
        expect(configError([flag, raw]).message, `${flag} ${raw}`).toMatch(
          new RegExp(`^${flag} must be an integer from 1 to \\d+, got "${raw}"$`),
        );
      }
    }
    expect(configError(["--port", "1e3"]).message).toBe('--port must be an integer from 0 to 65535, got "1e3"');
  });

  // Every empty JOBWIRE_* variable means "unset" (the CLI tests clear
  // JOBWIRE_DATABASE_URL that way); only an empty --host flag is an error.
  it("an empty JOBWIRE_HOST means unset, like every other variable", () => {
    expect(parseConfig([], { JOBWIRE_HOST: "" }).config.host).toBe("127.0.0.1");
  });

  it("bad values from the environment fail the same way, naming the option", () => {
    const bad: [NodeJS.ProcessEnv, RegExp][] = [
      [{ JOBWIRE_PORT: "65536" }, /--port must be an integer from 0 to 65535, got "65536"/],
      [{ JOBWIRE_INTROSPECTION: "maybe" }, /--introspection must be true or false/],
      [{ JOBWIRE_METRICS: "sometimes" }, /--metrics must be true or false, got "sometimes"/],
      [{ JOBWIRE_LOG_LEVEL: "loud" }, /--log-level must be one of/],
      [{ JOBWIRE_LOG_FORMAT: "xml" }, /--log-format must be pretty or json/],
      [{ JOBWIRE_MAX_BODY_BYTES: "0" }, /--max-body-bytes must be an integer/],
      [{ JOBWIRE_POOL_SIZE: "many" }, /--pool-size must be an integer/],
    ];
    for (const [env, message] of bad) {
      expect(configError([], env).message, JSON.stringify(env)).toMatch(message);
    }
    // A valid flag overrides a bad variable: the variable is never read.
    expect(parseConfig(["--port", "1234"], { JOBWIRE_PORT: "abc" }).config.port).toBe(1_234);
  });

  it("usage errors from the argument parser are ConfigErrors too", () => {
    expect(configError(["--port-of-call", "1"]).message).toMatch(/^Unknown option '--port-of-call'/);
    // A dash-led value is ambiguous to parseArgs; --port=-1 (above) is the way to pass one.
    expect(configError(["--port", "-1"]).message).toMatch(/--port/);
    expect(configError(["serve", "--port"]).message).toMatch(/--port/);
    expect(configError(["--help=yes"]).message).toMatch(/--help/);
  });

  it("positionals: the command and its arguments, in order; --help puts help first", () => {
    expect(parseConfig(["serve"], {}).positionals).toEqual(["serve"]);
    expect(parseConfig(["migrate", "--port", "1", "extra", "more"], {}).positionals).toEqual([
      "migrate",
      "extra",
      "more",
    ]);
    expect(parseConfig(["serve", "--help"], {}).positionals).toEqual(["help", "serve"]);
    expect(parseConfig(["--", "--port"], {})).toEqual({ config: DEFAULTS, positionals: ["--port"] });
  });

  it("reads process.env when no environment is given", () => {
    const saved = process.env.JOBWIRE_MAX_QUERY_DEPTH;
    process.env.JOBWIRE_MAX_QUERY_DEPTH = "7";
    try {
      expect(parseConfig([]).config.maxQueryDepth).toBe(7);
    } finally {
      if (saved === undefined) delete process.env.JOBWIRE_MAX_QUERY_DEPTH;
      else process.env.JOBWIRE_MAX_QUERY_DEPTH = saved;
    }
  });
});
