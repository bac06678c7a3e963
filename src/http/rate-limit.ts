// Rate limits per client address and route class, and bans for clients that keep ignoring 429s
// (DESIGN §4, §8), on the backend's counters: in this process, or in Redis across instances.
import type { Request, RequestHandler, Response } from 'express';
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { LimiterFactory } from '../backend/limiters.js';
import type { OutageWatch } from '../backend/outage.js';
import type { Config } from '../config.js';
import { errors } from '../errors.js';

/** The groups of routes that are limited separately: issuing keys, writing, reading private, reading public. */
export type RouteClass = 'keys' | 'publicWrite' | 'privateRead' | 'publicRead';

const ROUTE_CLASSES: readonly RouteClass[] = ['keys', 'publicWrite', 'privateRead', 'publicRead'];

/** The middleware of the rate limits, built once per app. */
export interface RateLimits {
  /** Mount first: answers 403 (errors.banned) to a banned client. */
  banGuard: RequestHandler;
  /** One limiter per route class, each counting per client per window. */
  limit: Record<RouteClass, RequestHandler>;
}

export interface RateLimitOptions {
  config: Pick<Config, 'rateLimit' | 'rateWindowSeconds' | 'banAfter' | 'banTimeSeconds'>;
  /** Where the counters live (the backend's). */
  limiters: LimiterFactory;
  /** The client a request counts against: a keyed hash of its address, never the address itself. */
  clientOf: (req: Request) => string;
  /** Counter store failures are the backend's outage: the request passes, the watch counts it. */
  outage?: Pick<OutageWatch, 'failed'>;
}

const passThrough: RequestHandler = (_req, _res, next) => next();

const perRouteClass = (make: (routeClass: RouteClass) => RequestHandler) =>
  Object.fromEntries(ROUTE_CLASSES.map((routeClass) => [routeClass, make(routeClass)])) as Record<
    RouteClass,
    RequestHandler
  >;

const retryAfter = (res: Response, ms: number): number => {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  res.set('Retry-After', String(seconds));
  return seconds;
};

/** Builds the ban guard and one limiter per route class; `rateLimit: 0` makes them all pass through. */
export function createRateLimits({ config, limiters, clientOf, outage }: RateLimitOptions): RateLimits {
  if (config.rateLimit === 0) {
    return { banGuard: passThrough, limit: perRouteClass(() => passThrough) };
  }
  const durationS = config.rateWindowSeconds;
  // A strike per 429; the banAfter-th within one window blocks the client for the ban time.
  const strikes =
    config.banAfter === 0
      ? undefined
      : limiters({ name: 'ban', points: config.banAfter - 1, durationS, blockS: config.banTimeSeconds });
  const storeFailed = (error: unknown) => outage?.failed(error, false);

  const banGuard: RequestHandler = async (req, res, next) => {
    if (!strikes) return next();
    let banned: RateLimiterRes | null = null;
    try {
      banned = await strikes.get(clientOf(req));
    } catch (error) {
      storeFailed(error); // a ban that cannot be checked does not stop the request
    }
    if (!banned || banned.consumedPoints <= strikes.points) return next();
    next(errors.banned(retryAfter(res, banned.msBeforeNext)));
  };

  const limiter = (routeClass: RouteClass): RequestHandler => {
    const counter = limiters({ name: routeClass, points: config.rateLimit, durationS });
    return async (req, res, next) => {
      const client = clientOf(req);
      try {
        await counter.consume(client);
        return next();
      } catch (refusal) {
        if (!(refusal instanceof RateLimiterRes)) {
          storeFailed(refusal); // counters that cannot be reached let the request pass
          return next();
        }
        const seconds = retryAfter(res, refusal.msBeforeNext);
        await strikes?.consume(client).catch(() => {}); // a rejection is the ban itself, or a store failure
        next(errors.rateLimited(seconds));
      }
    };
  };

  return { banGuard, limit: perRouteClass(limiter) };
}
