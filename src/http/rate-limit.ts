// Rate limits per client address and route class, a budget of written bytes per client address, and bans
// for clients that keep ignoring 429s (DESIGN §4, §8), on the backend's counters: in this process, or in
// Redis across instances.
import type { Request, RequestHandler } from 'express';
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { LimiterFactory } from '../backend/limiters.js';
import type { OutageWatch } from '../backend/outage.js';
import type { Config } from '../config.js';
import { errors } from '../errors.js';

/**
 * The groups of routes limited separately: issuing keys; every write (public and private POSTs, one-to-one
 * values and blobs, PATCH and DELETE, pipes); reading private paths; reading public paths.
 */
export type RouteClass = 'keys' | 'write' | 'privateRead' | 'publicRead';

const ROUTE_CLASSES: readonly RouteClass[] = ['keys', 'write', 'privateRead', 'publicRead'];

/** The middleware of the rate limits, built once per app. */
export interface RateLimits {
  /** Mount first: answers 403 (errors.banned) to a banned client. */
  banGuard: RequestHandler;
  /** One limiter per route class, each counting per client per window. */
  limit: Record<RouteClass, RequestHandler>;
  /**
   * Mount after a write's body is read (`res.locals.item`): counts its bytes against the client's
   * budget for the window (DEADROP_WRITE_BUDGET), 429 past it, before anything is stored.
   */
  spendWriteBudget: RequestHandler;
}

export interface RateLimitOptions {
  config: Pick<Config, 'rateLimit' | 'rateWindowSeconds' | 'banAfter' | 'banTimeSeconds' | 'writeBudget'>;
  /** Where the counters live (the backend's). */
  limiters: LimiterFactory;
  /** The client a request counts against: a keyed hash of its address, never the address itself. */
  clientOf: (req: Request) => string;
  /** Counter store failures are the backend's outage: the request passes, the watch counts it. */
  outage?: Pick<OutageWatch, 'failed' | 'epoch'>;
}

const passThrough: RequestHandler = (_req, _res, next) => next();

const perRouteClass = (make: (routeClass: RouteClass) => RequestHandler) =>
  Object.fromEntries(ROUTE_CLASSES.map((routeClass) => [routeClass, make(routeClass)])) as Record<
    RouteClass,
    RequestHandler
  >;

const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

/** The bytes a write stores: its JSON text in UTF-8, or its blob. */
const sizeOf = (item: unknown): number =>
  typeof item === 'string' ? Buffer.byteLength(item) : item instanceof Uint8Array ? item.byteLength : 0;

/**
 * Builds the ban guard, one limiter per route class and the write budget; `rateLimit: 0` turns off the
 * limiters and bans, `writeBudget: 0` the budget.
 */
export function createRateLimits({ config, limiters, clientOf, outage }: RateLimitOptions): RateLimits {
  const durationS = config.rateWindowSeconds;
  /** A counter that could not be reached; `begunIn` is the outage epoch when the call began. */
  const storeFailed = (error: unknown, begunIn: number | undefined) => outage?.failed(error, false, begunIn);
  const budget =
    config.writeBudget === 0 ? undefined : limiters({ name: 'bytes', points: config.writeBudget, durationS });
  const spendWriteBudget: RequestHandler = async (req, res, next) => {
    if (!budget) return next();
    // An empty write still costs a point: the budget is of stored bytes, never of nothing.
    const bytes = Math.max(1, sizeOf(res.locals.item));
    const begunIn = outage?.epoch;
    try {
      await budget.consume(clientOf(req), Math.min(bytes, config.writeBudget));
      next();
    } catch (refusal) {
      if (!(refusal instanceof RateLimiterRes)) {
        storeFailed(refusal, begunIn); // a budget that cannot be counted lets the write pass
        return next();
      }
      next(errors.writeBudgetSpent(config.writeBudget, seconds(refusal.msBeforeNext)));
    }
  };
  if (config.rateLimit === 0) {
    return { banGuard: passThrough, limit: perRouteClass(() => passThrough), spendWriteBudget };
  }
  // A strike per 429; the banAfter-th within one window blocks the client for the ban time.
  const strikes =
    config.banAfter === 0
      ? undefined
      : limiters({ name: 'ban', points: config.banAfter - 1, durationS, blockS: config.banTimeSeconds });

  const banGuard: RequestHandler = async (req, _res, next) => {
    if (!strikes) return next();
    let banned: RateLimiterRes | null = null;
    const begunIn = outage?.epoch;
    try {
      banned = await strikes.get(clientOf(req));
    } catch (error) {
      storeFailed(error, begunIn); // a ban that cannot be checked does not stop the request
    }
    if (!banned || banned.consumedPoints <= strikes.points) return next();
    next(errors.banned(seconds(banned.msBeforeNext)));
  };

  const limiter = (routeClass: RouteClass): RequestHandler => {
    const counter = limiters({ name: routeClass, points: config.rateLimit, durationS });
    return async (req, _res, next) => {
      const client = clientOf(req);
      const begunIn = outage?.epoch;
      try {
        await counter.consume(client);
        return next();
      } catch (refusal) {
        if (!(refusal instanceof RateLimiterRes)) {
          storeFailed(refusal, begunIn); // counters that cannot be reached let the request pass
          return next();
        }
        await strikes?.consume(client).catch(() => {}); // a rejection is the ban itself, or a store failure
        next(errors.rateLimited(seconds(refusal.msBeforeNext)));
      }
    };
  };

  return { banGuard, limit: perRouteClass(limiter), spendWriteBudget };
}
