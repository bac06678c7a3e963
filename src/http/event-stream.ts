// Server-sent events for the aggregator: each queued item is one event, consumed as it is sent, with an
// id the client's Last-Event-ID resumes from (DESIGN §5).
import { once } from 'node:events';
import type { Request, Response } from 'express';
import { errors } from '../errors.js';
import type { Relay } from '../relay.js';
import type { LogEntry } from '../store/store.js';
import type { RelayMetrics } from './metrics.js';
import { clientGone } from './query.js';

/** What else an event stream answers to: the relay stopping, and the metrics that count it. */
export interface EventStreamOptions {
  /** Ends the stream: aborted when the client leaves or the relay stops (default: when the client leaves). */
  signal?: AbortSignal;
  metrics?: Pick<RelayMetrics, 'eventStreamOpened' | 'itemsTaken'> | undefined;
}

/** True when the client asked for `text/event-stream`. */
export const wantsEventStream = (req: Request): boolean =>
  (req.headers.accept ?? '').includes('text/event-stream');

/** An event whose data lines, joined by the client with "\n", give back the item's JSON. */
const eventOf = ({ id, item }: LogEntry): string =>
  `id: ${id}\ndata: ${item.split(/\r\n|\r|\n/).join('\ndata: ')}\n\n`;

/** The Last-Event-ID header (or `?lastEventId=` for clients that cannot set headers), as a number. */
function resumeAfter(req: Request): number | undefined {
  const raw =
    req.header('last-event-id') ??
    (typeof req.query.lastEventId === 'string' ? req.query.lastEventId : undefined);
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d{1,16}$/.test(raw))
    throw errors.badQuery('Last-Event-ID must be the id of an event this relay sent.');
  return Number(raw);
}

/**
 * Streams the queue of `key` until the client leaves or `options.signal` ends it (then the stream ends
 * cleanly), with a heartbeat comment every `heartbeatMs`; `hook` is the private GET's `?hook=` (its
 * webhook rule applies).
 */
export async function serveEventStream(
  req: Request,
  res: Response,
  relay: Pick<Relay, 'openQueueStream'>,
  key: string,
  hook: string | undefined,
  heartbeatMs: number,
  { signal = clientGone(res), metrics }: EventStreamOptions = {},
) {
  const after = resumeAfter(req);
  const batches = await relay.openQueueStream(key, { hook }, after, signal);

  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no', // nginx would otherwise hold events back
  });
  res.write('retry: 1000\n\n');
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
  const closed = metrics?.eventStreamOpened();
  try {
    for await (const batch of batches) {
      metrics?.itemsTaken('event_stream', batch.length);
      if (!res.write(batch.map(eventOf).join(''))) {
        // With the signal, `once` removes its listeners whichever comes first.
        await once(res, 'drain', { signal }).catch(() => {});
      }
    }
  } finally {
    clearInterval(heartbeat);
    closed?.();
    res.end();
  }
}
