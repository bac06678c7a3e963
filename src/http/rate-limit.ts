// Rate limits per client IP and route class, and bans for clients that keep ignoring 429s (DESIGN §4, §8).
import { createHmac } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { type AugmentedRequest, ipKeyGenerator, type Logger, rateLimit } from 'express-rate-limit';
import { type RedisReply, RedisStore } from 'rate-limit-redis';
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import type { RedisClient } from '../store/redis-store.js';

/** The groups of routes that are limited separately: issuing keys, writing, reading private, reading public. */
export type RouteClass = 'keys' | 'publicWrite' | 'privateRead' | 'publicRead';

const ROUTE_CLASSES: readonly RouteClass[] = ['keys', 'publicWrite', 'privateRead', 'publicRead'];

/** The middleware of the rate limits, built once per app. */
export interface RateLimits {
  /** Mount first: answers 403 (errors.banned) to a banned client IP. */
  banGuard: RequestHandler;
  /** One limiter per route class, each counting per client IP per window. */
  limit: Record<RouteClass, RequestHandler>;
}

/** What createRateLimits needs; only `config` and `secret` are required. */
export interface RateLimitOptions {
  config: Pick<Config, 'rateLimit' | 'rateWindowSeconds' | 'banAfter' | 'banTimeSeconds'>;
  /** Keys the HMAC of client IPs: IPs are only ever stored as keyed hashes. */
  secret: string;
  /** When given, counters AND bans live in Redis so they hold across instances. */
  redis?: RedisClient | undefined;
  /** Redis key prefix, default 'dr:rl:'. */
  prefix?: string | undefined;
  /** Where store failures are reported (a pino logger fits); the console by default. */
  logger?: Logger | undefined;
}

/** Where bans, and the 429s that lead to them, are counted. */
interface BanBook {
  /** Milliseconds the client is still banned for; 0 when it is not banned. */
  remainingMs(client: string): Promise<number>;
  /** Counts one 429 answered to the client and bans it on the `banAfter`th within one window. */
  strike(client: string): Promise<void>;
}

// The window starts at the first 429; the ban resets the count, so a client back from a ban gets
// `banAfter` more 429s before the next one. One round trip, atomic across instances.
const STRIKE = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n < tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
redis.call('DEL', KEYS[1])
return 1`;

const consoleLogger: Logger = {
  warn: (error, message) => console.warn(message, error),
  error: (error, message) => console.error(message, error),
};

const passThrough: RequestHandler = (_req, _res, next) => next();

const perRouteClass = (make: (routeClass: RouteClass) => RequestHandler) =>
  Object.fromEntries(ROUTE_CLASSES.map((routeClass) => [routeClass, make(routeClass)])) as Record<
    RouteClass,
    RequestHandler
  >;

/** Builds the ban guard and one limiter per route class; `rateLimit: 0` makes them all pass through. */
export function createRateLimits({
  config,
  secret,
  redis,
  prefix = 'dr:rl:',
  logger = consoleLogger,
}: RateLimitOptions): RateLimits {
  if (config.rateLimit === 0) {
    return { banGuard: passThrough, limit: perRouteClass(() => passThrough) };
  }
  const windowMs = config.rateWindowSeconds * 1000;
  const banMs = config.banTimeSeconds * 1000;
  const ipKey = createHmac('sha256', secret).update('deadrop/rate-limit/ip').digest();
  // ipKeyGenerator maps IPv4-mapped IPv6 to IPv4 and an IPv6 address to its /56, which one client holds whole.
  const clientOf = (req: Request) =>
    createHmac('sha256', ipKey)
      .update(ipKeyGenerator(req.ip ?? ''))
      .digest('base64url')
      .slice(0, 22);
  const bans =
    config.banAfter === 0
      ? undefined
      : redis
        ? redisBanBook(redis, prefix, windowMs, config.banAfter, banMs)
        : memoryBanBook(windowMs, config.banAfter, banMs);

  const banGuard: RequestHandler = async (req, res, next) => {
    if (!bans) return next();
    let remainingMs = 0;
    try {
      remainingMs = await bans.remainingMs(clientOf(req));
    } catch (error) {
      logger.error(error, 'rate limits: the ban check failed, so the request passes');
    }
    if (remainingMs <= 0) return next();
    const seconds = Math.ceil(remainingMs / 1000);
    res.set('Retry-After', String(seconds));
    next(errors.banned(seconds));
  };

  const limiter = (routeClass: RouteClass): RequestHandler =>
    rateLimit({
      windowMs,
      limit: config.rateLimit,
      identifier: routeClass,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      keyGenerator: clientOf,
      passOnStoreError: true,
      logger,
      ...(redis && {
        store: new RetryingRedisStore({
          sendCommand: (...args: string[]) => redis.sendCommand<RedisReply>(args),
          prefix: `${prefix}${routeClass}:`,
        }),
      }),
      handler: async (req, res, next) => {
        const { key, resetTime } = (req as AugmentedRequest).rateLimit;
        const resetInMs = resetTime ? resetTime.getTime() - Date.now() : windowMs;
        const seconds = Math.max(1, Math.ceil(resetInMs / 1000));
        res.set('Retry-After', String(seconds));
        if (bans) {
          try {
            await bans.strike(key);
          } catch (error) {
            logger.error(error, 'rate limits: a 429 could not be counted toward a ban');
          }
        }
        next(errors.rateLimited(seconds));
      },
    });

  return { banGuard, limit: perRouteClass(limiter) };
}

/**
 * rate-limit-redis loads its Lua script once, when the limiter is built; if Redis was away then, every
 * later request would fail on that stored failure. This loads the script again instead.
 */
class RetryingRedisStore extends RedisStore {
  override async retryableIncrement(key: string): Promise<RedisReply> {
    const loaded = await this.incrementScriptSha.then(
      () => true,
      () => false,
    );
    if (!loaded) this.incrementScriptSha = this.loadIncrementScript(key);
    return super.retryableIncrement(key);
  }
}

function redisBanBook(
  client: RedisClient,
  prefix: string,
  windowMs: number,
  banAfter: number,
  banMs: number,
): BanBook {
  // The hash tag keeps both keys of a client on one Redis Cluster slot, as the script needs.
  const keysOf = (id: string) => [`${prefix}{${id}}:strikes`, `${prefix}{${id}}:ban`];
  return {
    remainingMs: async (id) => Math.max(0, await client.pTTL(keysOf(id)[1] as string)),
    strike: async (id) => {
      await client.eval(STRIKE, {
        keys: keysOf(id),
        arguments: [String(windowMs), String(banAfter), String(banMs)],
      });
    },
  };
}

function memoryBanBook(windowMs: number, banAfter: number, banMs: number): BanBook {
  const strikes = new Map<string, { count: number; resetAt: number }>();
  const bannedUntil = new Map<string, number>();
  let nextSweep = 0;
  // Once per window at most, so the maps hold only live entries without a timer.
  const sweep = (now: number) => {
    if (now < nextSweep) return;
    nextSweep = now + windowMs;
    for (const [id, entry] of strikes) if (entry.resetAt <= now) strikes.delete(id);
    for (const [id, until] of bannedUntil) if (until <= now) bannedUntil.delete(id);
  };
  return {
    remainingMs: async (id) => Math.max(0, (bannedUntil.get(id) ?? 0) - Date.now()),
    strike: async (id) => {
      const now = Date.now();
      sweep(now);
      let entry = strikes.get(id);
      if (!entry || entry.resetAt <= now) {
        entry = { count: 0, resetAt: now + windowMs };
        strikes.set(id, entry);
      }
      entry.count += 1;
      if (entry.count < banAfter) return;
      strikes.delete(id);
      bannedUntil.set(id, now + banMs);
    },
  };
}
