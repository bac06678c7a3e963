// What a running worker reports: the CLI prints these, tests assert on them.
import type { Refusal } from './request-gate.js';

/** One thing that happened in a worker. */
export type WorkerEvent =
  | { type: 'published'; exp: number }
  | { type: 'relay-down'; during: 'intake' | 'publish' | 'answer'; error: string; retryInMs: number }
  | { type: 'relay-up'; awayMs: number }
  | { type: 'answered'; rid: string; typ: string; user: string; ok: boolean; code?: string; ms: number }
  | { type: 'refused'; reason: Refusal; rid?: string; detail?: string }
  | { type: 'failed'; rid?: string; error: string }
  | { type: 'warning'; message: string };

/** Receives a worker's events. */
export type EmitEvent = (event: WorkerEvent) => void;

/** One line for a log, keys and contents of requests left out. */
export function describeEvent(event: WorkerEvent): string {
  switch (event.type) {
    case 'published':
      return `descriptor published (valid until ${new Date(event.exp * 1000).toISOString()})`;
    case 'relay-down':
      return `relay unreachable during ${event.during}: ${event.error} Retrying in ${Math.round(event.retryInMs)} ms (checking every 0.5 s whether it is back).`;
    case 'relay-up':
      return `relay reachable again after ${(event.awayMs / 1000).toFixed(1)} s; taking requests`;
    case 'answered':
      return `${event.ok ? 'answered' : `refused (${event.code})`} ${event.typ} for ${event.user} in ${event.ms} ms`;
    case 'refused':
      return `dropped a request: ${event.reason}${event.detail ? ` (${event.detail})` : ''}`;
    case 'failed':
      return `a request failed: ${event.error}`;
    case 'warning':
      return event.message;
  }
}
