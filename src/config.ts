// Configuration from the environment: pure, checked once at start, one plain sentence per bad value.

/** Where the relay keeps its data. */
export type StoreKind = 'sqlite' | 'redis' | 'memory';

export interface Config {
  readonly port: number;
  /** Interface to listen on; undefined listens on all, as Node does by default. */
  readonly host: string | undefined;
  readonly store: StoreKind;
  readonly dataDir: string;
  readonly redisUrl: string | undefined;
  /** Seed nodes of a Redis Cluster (REDIS_CLUSTER), used instead of REDIS_URL. */
  readonly redisCluster: readonly string[] | undefined;
  /** Undefined means: generate one and keep it in the data dir (not allowed with Redis). */
  readonly secret: string | undefined;
  readonly ttlSeconds: number;
  readonly bodyLimit: number;
  readonly maxQueue: number;
  readonly maxFields: number;
  /** Largest application/octet-stream one-to-one value, in bytes; 0 refuses them. */
  readonly blobLimit: number;
  /** Bytes of such values one key pair may hold at once. */
  readonly keyQuota: number;
  readonly logLevel: string;

  /** How long a webhook URL registered with `?hook=` is remembered, in seconds. */
  readonly hookTtlSeconds: number;
  readonly webhookTimeoutMs: number;
  /** Lets webhooks reach loopback and private networks: for tests and closed networks only. */
  readonly webhookAllowPrivate: boolean;

  /** Requests per client IP per route class per window; 0 disables rate limiting. */
  readonly rateLimit: number;
  readonly rateWindowSeconds: number;
  /** Bytes one client address may write (store) per window; 0 disables the budget. */
  readonly writeBudget: number;
  /**
   * Bytes the store may hold in all (SQLite: pages in use); past it writes get 507. Undefined: the
   * default on SQLite, and on Redis its own maxmemory.
   */
  readonly storeMax: number | undefined;
  /** 429s within one window after which the client IP is banned; 0 disables bans. */
  readonly banAfter: number;
  readonly banTimeSeconds: number;
  /** How many reverse proxies in front of the relay to trust for the client IP (X-Forwarded-For). */
  readonly trustProxy: number;

  /** Seconds between SSE heartbeat comments, so proxies do not close a quiet stream. */
  readonly sseHeartbeatSeconds: number;
  /** Seconds an item sent on an event stream stays for a reconnecting client (unless acknowledged sooner). */
  readonly sseResumeSeconds: number;

  readonly headersTimeoutMs: number;
  /** Time to receive a whole request; 0 (the default) leaves it to the body limit, so pipes may run long. */
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;

  /** How long a pipe token waits for its other side, in seconds. */
  readonly pipeTtlSeconds: number;
  /** Pipe tokens waiting at once per key and method. */
  readonly pipeMax: number;
  /** This instance's own base URL, for pipe redirects behind a load balancer; else the request's. */
  readonly publicUrl: string | undefined;
  /** An external piping server to redirect pipes to instead of the built-in /stream/. */
  readonly pipingUrl: string | undefined;

  /** Time a request other than a pipe stream has to deliver its whole body, from its headers (408 after). */
  readonly bodyTimeoutMs: number;
  /** Connections open at once; undefined sizes the cap from the open-file limit when the server starts. */
  readonly maxConnections: number | undefined;
  /** Connections open at once from one client address (IPv4, or IPv6 /56); 0 turns this cap off. */
  readonly maxConnectionsPerIp: number;

  /** `GET /metrics`: `on` the main port, `off`, or only on this port of its own (same HOST). */
  readonly metrics: 'on' | 'off' | number;
  /** How long a graceful shutdown lets running pipe transfers finish before it cuts them, in milliseconds. */
  readonly shutdownGraceMs: number;
}

/** The port of Securelay's examples and of most container platforms. */
const DEFAULT_PORT = 8080;
/** A day: long enough for a form's owner to come back, short enough that the relay is no storage. */
const DEFAULT_TTL_SECONDS = 86_400;
/** 10 KiB, Securelay's limit: a form submission or a small JSON document, not a file. */
const DEFAULT_BODY_LIMIT = 10_240;
/** Bounds what one key pair can hold (with the body limit, about 10 MiB) so no key can fill the store. */
const DEFAULT_MAX_QUEUE = 1000;
const DEFAULT_MAX_FIELDS = 1000;
/** 1 MiB blobs, 64 MiB per key pair: an encrypted file drop in chunks, not a file host. */
const DEFAULT_BLOB_LIMIT = 1_048_576;
const DEFAULT_KEY_QUOTA = 67_108_864;
/** A secret shorter than this is guessable, and with it every key could be forged. */
const MIN_SECRET_LENGTH = 16;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** A webhook that has not answered in 4 s is treated as down; the item is queued instead (Securelay). */
const DEFAULT_WEBHOOK_TIMEOUT_MS = 4000;
/**
 * 1000 requests a minute per IP and route class: far above what a form, a page or a worker sends, low
 * enough that guessing keys or flooding one relay from one address gets nowhere.
 */
const DEFAULT_RATE_LIMIT = 1000;
const DEFAULT_RATE_WINDOW_SECONDS = 60;
/**
 * 256 MiB a minute per address: a drop of a few hundred MiB, or tens of thousands of form posts, and yet a
 * single address cannot fill a disk in an afternoon (that is DEADROP_STORE_MAX's job across addresses).
 */
const DEFAULT_WRITE_BUDGET = 268_435_456;
/** 2 GiB: room for thousands of busy key pairs on any laptop or small VPS, and no more. */
export const DEFAULT_SQLITE_STORE_MAX = 2_147_483_648;
/** Ten 429s in one window is a client that ignores Retry-After: it is banned for ten minutes. */
const DEFAULT_BAN_AFTER = 10;
const DEFAULT_BAN_TIME_SECONDS = 600;
/** Slow clients must send their headers within 10 s (slowloris); idle keep-alive sockets close after 5 s. */
const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
const DEFAULT_KEEPALIVE_TIMEOUT_MS = 5_000;
/** Below the 30–60 s idle timeouts of common proxies and load balancers. */
const DEFAULT_SSE_HEARTBEAT_SECONDS = 15;
/**
 * Five minutes: a dropped phone or laptop connection reconnects well within it, and a delivered item
 * does not wait out its whole TTL in the store (EventSource acknowledges with Last-Event-ID anyway).
 */
const DEFAULT_SSE_RESUME_SECONDS = 300;
/** Securelay's pipe defaults: a redirect URL lives 60 s, at most 5 wait per key and method. */
const DEFAULT_PIPE_TTL_SECONDS = 60;
const DEFAULT_PIPE_MAX = 5;
/**
 * A body (10 KiB, or a 1 MiB blob) has 30 s to arrive: a 1 MiB blob over a 300 kbit/s uplink, while a
 * client that sends headers and then nothing holds its socket no longer than that.
 */
const DEFAULT_BODY_TIMEOUT_MS = 30_000;
/**
 * Several people behind one NAT, each with a page, an event stream and a few requests in flight; a small
 * share of the global cap, so one address cannot hold the relay's sockets.
 */
const DEFAULT_MAX_CONNECTIONS_PER_IP = 256;
/**
 * Ten seconds for running pipe transfers after SIGTERM: most end within it, and it is well under the
 * 30 s Kubernetes and the 90 s systemd wait before they kill (`docker stop` waits 10 s: give it `-t`).
 */
const DEFAULT_SHUTDOWN_GRACE_SECONDS = 10;

/** Thrown by loadConfig with every problem found, one sentence each. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * REDIS_CLUSTER: seed nodes as comma-separated redis:// or rediss:// URLs with a host and a port; any one
 * that answers gives the client the whole cluster. Pushes a sentence per bad seed.
 */
function clusterSeeds(raw: string | undefined, problems: string[]): readonly string[] | undefined {
  if (raw === undefined) return undefined;
  const seeds = raw
    .split(',')
    .map((seed) => seed.trim())
    .filter((seed) => seed !== '');
  const bad = seeds.filter((seed) => {
    try {
      const url = new URL(seed);
      return !['redis:', 'rediss:'].includes(url.protocol) || url.hostname === '' || url.port === '';
    } catch {
      return true;
    }
  });
  if (seeds.length === 0 || bad.length > 0) {
    problems.push(
      `REDIS_CLUSTER must list seed nodes as redis://host:port (or rediss://), separated by commas, such as redis://10.0.0.1:7000,redis://10.0.0.2:7000, but ${seeds.length === 0 ? 'it names none' : `"${(bad[0] as string).replace(/\/\/[^@/]*@/, '//…@').slice(0, 40)}" is not one`}.`,
    );
    return undefined;
  }
  return Object.freeze(seeds);
}

/** Reads and checks the configuration; throws a ConfigError listing every bad value. */
export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const value = (name: string): string | undefined => {
    const raw = env[name]?.trim();
    return raw === '' ? undefined : raw;
  };
  const integer = (name: string, fallback: number, min: number, max: number, what: string): number => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    const parsed = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      problems.push(`${name} must be ${what} from ${min} to ${max}, but it is "${raw}".`);
      return fallback;
    }
    return parsed;
  };

  const port = integer('PORT', DEFAULT_PORT, 0, 65_535, 'a port number');
  const redisUrl = value('REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    problems.push(`REDIS_URL must start with redis:// or rediss://, but it is "${redisUrl.slice(0, 40)}".`);
  }
  const redisCluster = clusterSeeds(value('REDIS_CLUSTER'), problems);
  if (redisUrl !== undefined && redisCluster !== undefined) {
    problems.push(
      'REDIS_URL and REDIS_CLUSTER are both set; set REDIS_URL for one Redis server or REDIS_CLUSTER for a Redis Cluster, not both.',
    );
  }
  const storeName = value('DEADROP_STORE') ?? (redisUrl || redisCluster ? 'redis' : 'sqlite');
  let store: StoreKind = 'sqlite';
  if (storeName === 'sqlite' || storeName === 'redis' || storeName === 'memory') store = storeName;
  else problems.push(`DEADROP_STORE must be sqlite, redis or memory, but it is "${storeName}".`);
  if (store === 'redis' && redisUrl === undefined && redisCluster === undefined) {
    problems.push(
      'DEADROP_STORE is redis, so REDIS_URL must be set (for example redis://127.0.0.1:6379), or REDIS_CLUSTER for a Redis Cluster.',
    );
  }
  const secret = value('DEADROP_SECRET');
  if (secret !== undefined && secret.length < MIN_SECRET_LENGTH) {
    problems.push(
      `DEADROP_SECRET must be at least ${MIN_SECRET_LENGTH} characters long; use a random string.`,
    );
  }
  if (store === 'redis' && secret === undefined) {
    problems.push(
      'DEADROP_SECRET must be set with the Redis store, so that every instance issues and accepts the same keys.',
    );
  }
  const flag = (name: string): boolean => {
    const raw = value(name)?.toLowerCase();
    if (raw === undefined || raw === 'false' || raw === '0') return false;
    if (raw === 'true' || raw === '1') return true;
    problems.push(`${name} must be true or false, but it is "${raw}".`);
    return false;
  };
  const baseUrl = (name: string): string | undefined => {
    const raw = value(name);
    if (raw === undefined) return undefined;
    try {
      const url = new URL(raw);
      if (url.protocol === 'http:' || url.protocol === 'https:') return raw.replace(/\/+$/, '');
    } catch {}
    problems.push(`${name} must be an http or https URL such as https://relay.example, but it is "${raw}".`);
    return undefined;
  };
  const logLevel = value('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, but it is "${logLevel}".`);
  }

  const metricsSetting = (): Config['metrics'] => {
    const raw = value('DEADROP_METRICS')?.toLowerCase();
    if (raw === undefined || raw === 'on') return 'on';
    if (raw === 'off') return 'off';
    const metricsPort = /^\d{1,5}$/.test(raw) ? Number(raw) : Number.NaN;
    if (metricsPort <= 65_535 && (metricsPort === 0 || metricsPort !== port)) return metricsPort;
    problems.push(
      `DEADROP_METRICS must be on, off, or a port other than PORT (${port}) such as 9464, but it is "${raw}".`,
    );
    return 'on';
  };

  const config: Config = {
    port,
    host: value('HOST'),
    store,
    dataDir: value('DEADROP_DATA_DIR') ?? './data',
    redisUrl,
    redisCluster,
    secret,
    ttlSeconds: integer('DEADROP_TTL', DEFAULT_TTL_SECONDS, 1, 31_536_000, 'a number of seconds'),
    bodyLimit: integer('DEADROP_BODY_LIMIT', DEFAULT_BODY_LIMIT, 1, 1_048_576, 'a number of bytes'),
    maxQueue: integer('DEADROP_MAX_QUEUE', DEFAULT_MAX_QUEUE, 1, 1_000_000, 'a whole number'),
    maxFields: integer('DEADROP_MAX_FIELDS', DEFAULT_MAX_FIELDS, 1, 1_000_000, 'a whole number'),
    logLevel,
    blobLimit: integer('DEADROP_BLOB_LIMIT', DEFAULT_BLOB_LIMIT, 0, 104_857_600, 'a number of bytes'),
    keyQuota: integer('DEADROP_KEY_QUOTA', DEFAULT_KEY_QUOTA, 0, 1_099_511_627_776, 'a number of bytes'),
    hookTtlSeconds: integer('DEADROP_HOOK_TTL', DEFAULT_TTL_SECONDS, 1, 31_536_000, 'a number of seconds'),
    webhookTimeoutMs: integer(
      'DEADROP_WEBHOOK_TIMEOUT',
      DEFAULT_WEBHOOK_TIMEOUT_MS,
      1,
      60_000,
      'a number of milliseconds',
    ),
    webhookAllowPrivate: flag('DEADROP_WEBHOOK_ALLOW_PRIVATE'),
    rateLimit: integer('DEADROP_RATE_LIMIT', DEFAULT_RATE_LIMIT, 0, 1_000_000_000, 'a number of requests'),
    rateWindowSeconds: integer(
      'DEADROP_RATE_WINDOW',
      DEFAULT_RATE_WINDOW_SECONDS,
      1,
      86_400,
      'a number of seconds',
    ),
    writeBudget: integer(
      'DEADROP_WRITE_BUDGET',
      DEFAULT_WRITE_BUDGET,
      0,
      1_099_511_627_776,
      'a number of bytes',
    ),
    storeMax:
      value('DEADROP_STORE_MAX') === undefined
        ? undefined
        : integer('DEADROP_STORE_MAX', 0, 1_048_576, 1_099_511_627_776 * 64, 'a number of bytes'),
    banAfter: integer('DEADROP_BAN_AFTER', DEFAULT_BAN_AFTER, 0, 1_000_000, 'a number of 429 answers'),
    banTimeSeconds: integer(
      'DEADROP_BAN_TIME',
      DEFAULT_BAN_TIME_SECONDS,
      1,
      31_536_000,
      'a number of seconds',
    ),
    trustProxy: integer('DEADROP_TRUST_PROXY', 0, 0, 10, 'a number of proxies'),
    sseHeartbeatSeconds: integer(
      'DEADROP_SSE_HEARTBEAT',
      DEFAULT_SSE_HEARTBEAT_SECONDS,
      1,
      3600,
      'a number of seconds',
    ),
    sseResumeSeconds: integer(
      'DEADROP_SSE_RESUME',
      DEFAULT_SSE_RESUME_SECONDS,
      1,
      86_400,
      'a number of seconds',
    ),
    headersTimeoutMs: integer(
      'DEADROP_HEADERS_TIMEOUT',
      DEFAULT_HEADERS_TIMEOUT_MS,
      1,
      600_000,
      'a number of milliseconds',
    ),
    requestTimeoutMs: integer('DEADROP_REQUEST_TIMEOUT', 0, 0, 86_400_000, 'a number of milliseconds'),
    keepAliveTimeoutMs: integer(
      'DEADROP_KEEPALIVE_TIMEOUT',
      DEFAULT_KEEPALIVE_TIMEOUT_MS,
      1,
      600_000,
      'a number of milliseconds',
    ),
    pipeTtlSeconds: integer('DEADROP_PIPE_TTL', DEFAULT_PIPE_TTL_SECONDS, 1, 3600, 'a number of seconds'),
    pipeMax: integer('DEADROP_PIPE_MAX', DEFAULT_PIPE_MAX, 1, 1000, 'a whole number'),
    publicUrl: baseUrl('DEADROP_PUBLIC_URL'),
    pipingUrl: baseUrl('DEADROP_PIPING_URL'),
    bodyTimeoutMs: integer(
      'DEADROP_BODY_TIMEOUT',
      DEFAULT_BODY_TIMEOUT_MS,
      1,
      3_600_000,
      'a number of milliseconds',
    ),
    maxConnections:
      value('DEADROP_MAX_CONNECTIONS') === undefined
        ? undefined
        : integer('DEADROP_MAX_CONNECTIONS', 0, 1, 10_000_000, 'a number of connections'),
    maxConnectionsPerIp: integer(
      'DEADROP_MAX_CONNECTIONS_PER_IP',
      DEFAULT_MAX_CONNECTIONS_PER_IP,
      0,
      10_000_000,
      'a number of connections',
    ),
    metrics: metricsSetting(),
    shutdownGraceMs:
      integer('DEADROP_SHUTDOWN_GRACE', DEFAULT_SHUTDOWN_GRACE_SECONDS, 0, 86_400, 'a number of seconds') *
      1000,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
