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
  /** Undefined means: generate one and keep it in the data dir (not allowed with Redis). */
  readonly secret: string | undefined;
  readonly ttlSeconds: number;
  readonly bodyLimit: number;
  readonly maxQueue: number;
  readonly maxFields: number;
  readonly logLevel: string;
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
/** A secret shorter than this is guessable, and with it every key could be forged. */
const MIN_SECRET_LENGTH = 16;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Thrown by loadConfig with every problem found, one sentence each. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

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
  const storeName = value('DEADROP_STORE') ?? (redisUrl ? 'redis' : 'sqlite');
  let store: StoreKind = 'sqlite';
  if (storeName === 'sqlite' || storeName === 'redis' || storeName === 'memory') store = storeName;
  else problems.push(`DEADROP_STORE must be sqlite, redis or memory, but it is "${storeName}".`);
  if (store === 'redis' && redisUrl === undefined) {
    problems.push('DEADROP_STORE is redis, so REDIS_URL must be set (for example redis://127.0.0.1:6379).');
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
  const logLevel = value('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, but it is "${logLevel}".`);
  }

  const config: Config = {
    port,
    host: value('HOST'),
    store,
    dataDir: value('DEADROP_DATA_DIR') ?? './data',
    redisUrl,
    secret,
    ttlSeconds: integer('DEADROP_TTL', DEFAULT_TTL_SECONDS, 1, 31_536_000, 'a number of seconds'),
    bodyLimit: integer('DEADROP_BODY_LIMIT', DEFAULT_BODY_LIMIT, 1, 1_048_576, 'a number of bytes'),
    maxQueue: integer('DEADROP_MAX_QUEUE', DEFAULT_MAX_QUEUE, 1, 1_000_000, 'a whole number'),
    maxFields: integer('DEADROP_MAX_FIELDS', DEFAULT_MAX_FIELDS, 1, 1_000_000, 'a whole number'),
    logLevel,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
