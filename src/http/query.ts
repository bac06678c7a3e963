// What reads share: one-valued query parameters, `?wait=`, and a signal for a client that left.
import type express from 'express';
import { errors } from '../errors.js';

/** `?<name>=` as one string, or undefined; repeated parameters are a 400. */
export function singleQuery(query: express.Request['query'], name: string): string | undefined {
  const value = query[name];
  if (value === undefined || typeof value === 'string') return value;
  throw errors.badQuery(`Give "${name}" once.`);
}

const MAX_WAIT_SECONDS = 60;

/** `?wait=<seconds>` (0–60, fractions allowed) in milliseconds. */
export function waitMs(query: express.Request['query']): number {
  const raw = singleQuery(query, 'wait');
  if (raw === undefined) return 0;
  const seconds = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(seconds <= MAX_WAIT_SECONDS)) {
    throw errors.badQuery(`"wait" must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}.`);
  }
  return Math.round(seconds * 1000);
}

/** An AbortSignal that fires when the client goes away before its answer is complete. */
export function clientGone(res: express.Response): AbortSignal {
  const controller = new AbortController();
  res.on('close', () => controller.abort());
  return controller.signal;
}
