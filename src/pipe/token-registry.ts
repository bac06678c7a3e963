// Pipe tokens waiting at /pipe/ for their other side: the port, and the in-memory adapter for one instance.
import { randomBytes } from 'node:crypto';
import { errors } from '../errors.js';
import type { PipeDirection, PipeSide } from './sides.js';

/** An arrival at /pipe/, and the base URL of the instance that would hold its stream. */
export interface PipeArrival extends PipeSide {
  /** DEADROP_PUBLIC_URL of this instance; undefined lets each side use its own request's base URL. */
  baseUrl: string | undefined;
}

/** What an arrival gets: a token, and where its stream is held. */
export interface PipeTicket {
  token: string;
  /** True for the first side (a new token); false when it paired with a waiting token. */
  created: boolean;
  /** The base URL recorded by the instance that created the token. */
  baseUrl: string | undefined;
}

export interface RegistryLimits {
  /** How long a token waits for its other side (DEADROP_PIPE_TTL). */
  ttlMs: number;
  /** Tokens waiting at once per key and method (DEADROP_PIPE_MAX). */
  max: number;
}

/**
 * Waiting pipe tokens, shared by every instance that shares the registry. `arrive` pairs atomically: it
 * takes the oldest token waiting on the opposite side, or creates one; over `max` it throws tooManyPipes.
 */
export interface TokenRegistry {
  arrive(arrival: PipeArrival): Promise<PipeTicket>;
  /** Withdraws a token nobody paired with yet (its waiting side left); a no-op once paired or expired. */
  cancel(pub: string, dir: PipeDirection, token: string): Promise<void>;
  /** Tokens still waiting for their other side at this key pair and direction. */
  countWaiting(pub: string, dir: PipeDirection): Promise<number>;
  close(): Promise<void>;
}

/**
 * The 429 of a full line: a waiting token frees its place when it pairs (any moment) or expires (within
 * its TTL), so a retry after a few seconds is sensible.
 */
export const pipeLineFull = ({ ttlMs, max }: RegistryLimits) =>
  errors.tooManyPipes(max, Math.min(5, Math.ceil(ttlMs / 1000)));

/** 16 random bytes: the token is the only secret of a /stream/ URL. */
export const newPipeToken = (): string => randomBytes(16).toString('base64url');

/** The shape of every token, so that /stream/ can refuse anything else without a lookup. */
export const PIPE_TOKEN_PATTERN = /^[A-Za-z0-9_-]{22}$/;

interface WaitingToken {
  token: string;
  role: PipeSide['role'];
  method: PipeSide['method'];
  baseUrl: string | undefined;
  timer: NodeJS.Timeout;
}

/** The registry of a single instance: everything happens in one synchronous step, so pairing is atomic. */
export function createMemoryTokenRegistry({ ttlMs, max }: RegistryLimits): TokenRegistry {
  // Oldest first, per key pair and direction; only one side can be waiting at a time.
  const lines = new Map<string, WaitingToken[]>();
  const lineKey = (pub: string, dir: PipeDirection) => `${pub}:${dir}`;

  const remove = (key: string, token: string): WaitingToken | undefined => {
    const line = lines.get(key);
    const index = line?.findIndex((waiting) => waiting.token === token) ?? -1;
    if (!line || index < 0) return undefined;
    const [removed] = line.splice(index, 1);
    if (line.length === 0) lines.delete(key);
    clearTimeout(removed?.timer);
    return removed;
  };

  return {
    async arrive({ pub, dir, role, method, baseUrl }) {
      const key = lineKey(pub, dir);
      const line = lines.get(key) ?? [];
      const partner = line.find((waiting) => waiting.role !== role);
      if (partner) {
        remove(key, partner.token);
        return { token: partner.token, created: false, baseUrl: partner.baseUrl };
      }
      if (line.filter((waiting) => waiting.method === method).length >= max) {
        throw pipeLineFull({ ttlMs, max });
      }
      const token = newPipeToken();
      const timer = setTimeout(() => remove(key, token), ttlMs).unref();
      line.push({ token, role, method, baseUrl, timer });
      lines.set(key, line);
      return { token, created: true, baseUrl };
    },
    async cancel(pub, dir, token) {
      remove(lineKey(pub, dir), token);
    },
    async countWaiting(pub, dir) {
      return lines.get(lineKey(pub, dir))?.length ?? 0;
    },
    async close() {
      for (const line of lines.values()) for (const waiting of line) clearTimeout(waiting.timer);
      lines.clear();
    },
  };
}
