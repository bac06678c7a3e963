// Server-sent events for the aggregator: each queued item is one event, consumed as it is sent, with an
// id the client's Last-Event-ID resumes from (DESIGN §5).
import { once } from 'node:events';
import type { Request, Response } from 'express';
import { errors } from '../errors.js';
import type { Relay } from '../relay.js';
import type { LogEntry } from '../store/store.js';

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
 * Streams the queue of `key` until the client leaves, with a heartbeat comment every `heartbeatMs`;
 * `hook` is the private GET's `?hook=` (its webhook rule applies).
 */
export async function serveEventStream(
  req: Request,
  res: Response,
  relay: Pick<Relay, 'openQueueStream'>,
  key: string,
  hook: string | undefined,
  heartbeatMs: number,
) {
  const after = resumeAfter(req);
  const controller = new AbortController();
  res.on('close', () => controller.abort());
  const batches = await relay.openQueueStream(key, { hook }, after, controller.signal);

  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no', // nginx would otherwise hold events back
  });
  res.write('retry: 1000\n\n');
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
  try {
    for await (const batch of batches) {
      if (!res.write(batch.map(eventOf).join(''))) {
        // With the signal, `once` removes its listeners whichever comes first.
        await once(res, 'drain', { signal: controller.signal }).catch(() => {});
      }
    }
  } finally {
    clearInterval(heartbeat);
    res.end();
  }
}
