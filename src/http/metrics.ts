// Prometheus metrics of one relay (GET /metrics, through prom-client) on a registry of its own, so that
// several apps in one process (tests, benchmarks) never share or collide on a metric.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { BackendHealth } from '../backend/open-backend.js';
import type { OutageWatch } from '../backend/outage.js';
import type { RelayError } from '../errors.js';
import type { Relay } from '../relay.js';
import type { WebhookSender } from '../webhooks/webhook-sender.js';
import { UNLOGGED } from './logging.js';

/** What a scrape reads from the running relay, rather than counting it as it happens. */
export interface ScrapedSources {
  health(): BackendHealth;
  /** Live-delivery listeners: long-polls waiting and event streams listening (the notifier's count). */
  listeners(): number;
  /** Pipe tokens held for /stream/ and the sides waiting on them. */
  pipes(): { held: number; waiting: number };
}

/** How a queued item left its queue. */
export type TakenBy = 'drain' | 'event_stream';

export type RelayMetrics = ReturnType<typeof createRelayMetrics>;

/**
 * Latency buckets in seconds: milliseconds for store operations, up to the 60 s of the longest
 * long-poll; event streams and pipes, which run longer, land in +Inf.
 */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Requests that matched no route (static assets, 404s, refusals before routing) share one label. */
const NO_ROUTE = 'other';

/** Builds the metrics; `readAtScrape` connects the gauges that are read rather than counted. */
export function createRelayMetrics() {
  const registry = new Registry();
  const registers = [registry];
  let sources: ScrapedSources | undefined;

  const requests = new Counter({
    name: 'deadrop_http_requests_total',
    help: 'Requests answered, by route pattern (never the path: keys are not labels), method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    registers,
  });
  const latency = new Histogram({
    name: 'deadrop_http_request_duration_seconds',
    help: 'Time from a request to the end of its answer, by route pattern and method.',
    labelNames: ['route', 'method'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  // The labelled children, kept: prom-client would otherwise hash the labels of every request. Routes are
  // patterns and statuses a few dozen, so this stays small.
  const series = new Map<
    string,
    {
      requests: Counter.Internal;
      latency: Histogram.Internal<'route' | 'method'>;
    }
  >();
  const seriesOf = (route: string, method: string, status: number) => {
    const key = `${route} ${method} ${status}`;
    let found = series.get(key);
    if (!found) {
      found = {
        requests: requests.labels(route, method, String(status)),
        latency: latency.labels(route, method),
      };
      series.set(key, found);
    }
    return found;
  };
  new Gauge({
    name: 'deadrop_store_up',
    help: 'Whether the store answers (1) or is away (0), as the backend last saw it.',
    labelNames: ['kind'] as const,
    registers,
    collect() {
      if (!sources) return;
      const { kind, up } = sources.health();
      this.reset();
      this.set({ kind }, up ? 1 : 0);
    },
  });
  const storeErrors = new Counter({
    name: 'deadrop_store_errors_total',
    help: 'Store failures met while serving: requests answered 503 (store_unavailable), and rate-limit counters that could not be reached (the request passed).',
    labelNames: ['during'] as const,
    registers,
  });
  const queued = new Counter({
    name: 'deadrop_queue_items_added_total',
    help: 'Items queued at a public key by this instance (not those a webhook took).',
    registers,
  });
  const taken = new Counter({
    name: 'deadrop_queue_items_taken_total',
    help: 'Queued items handed to their owner by this instance: drained by a GET, or sent on an event stream (a resend to a reconnecting client counts again).',
    labelNames: ['by'] as const,
    registers,
  });
  const longPolls = new Gauge({
    name: 'deadrop_long_polls',
    help: 'Reads with ?wait= in progress (aggregator drains and one-to-one takes).',
    registers,
  });
  const eventStreams = new Gauge({
    name: 'deadrop_event_streams',
    help: 'Server-sent event streams open.',
    registers,
  });
  new Gauge({
    name: 'deadrop_live_listeners',
    help: 'Live-delivery listeners registered with the notifier: waiting long-polls and open event streams; 0 when nobody waits.',
    registers,
    collect() {
      if (sources) this.set(sources.listeners());
    },
  });
  const pipesActive = new Gauge({
    name: 'deadrop_pipe_streams_active',
    help: 'Pipe transfers (/stream/) running: both sides there, bytes flowing.',
    registers,
  });
  new Gauge({
    name: 'deadrop_pipe_sides_waiting',
    help: 'Sides at /stream/ waiting for their other side.',
    registers,
    collect() {
      if (sources) this.set(sources.pipes().waiting);
    },
  });
  const pipeStreams = new Counter({
    name: 'deadrop_pipe_streams_total',
    help: 'Pipe transfers ended: complete, or cut (a side left, or the relay stopped).',
    labelNames: ['outcome'] as const,
    registers,
  });
  const pipeBytes = new Counter({
    name: 'deadrop_pipe_bytes_total',
    help: 'Bytes received from pipe senders and passed on to receivers.',
    registers,
  });
  const webhooks = new Counter({
    name: 'deadrop_webhook_deliveries_total',
    help: 'Webhook deliveries: delivered (a 2xx in time) or failed (the item was queued instead).',
    labelNames: ['outcome'] as const,
    registers,
  });
  const refusals = new Counter({
    name: 'deadrop_rate_limit_refusals_total',
    help: 'Requests refused by the rate limits: rate_limited (429) or banned (403).',
    labelNames: ['reason'] as const,
    registers,
  });

  const serve = async (_req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const text = await registry.metrics();
    res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
    res.end(text);
  };

  return {
    registry,

    /** Connects the gauges read at each scrape to the running relay. */
    readAtScrape(from: ScrapedSources): void {
      sources = from;
    },

    /** Adds Node's process metrics (CPU, memory, event loop, handles): once per process, by the server. */
    collectProcessMetrics(): void {
      collectDefaultMetrics({ register: registry });
    },

    /** Middleware, mounted first: counts and times every request by the route it matched. */
    countRequests: ((req, res, next) => {
      const started = performance.now();
      res.once('close', () => {
        const route = req.route ? `${req.baseUrl}${req.route.path}` : NO_ROUTE;
        const series = seriesOf(route, req.method, res.statusCode);
        series.requests.inc();
        series.latency.observe((performance.now() - started) / 1000);
      });
      next();
    }) as RequestHandler,

    /** Serves the text format Prometheus scrapes; a plain Node handler, for the app or a port of its own. */
    serve,

    /** The /metrics route of the app: a scrape is counted here, not logged. */
    route: ((req, res) => {
      res.locals[UNLOGGED] = true;
      return serve(req, res);
    }) as RequestHandler,

    /** An error answer: store outages and rate-limit refusals are counted by their catalog code. */
    errorAnswered(error: Pick<RelayError, 'code'>): void {
      if (error.code === 'store_unavailable') storeErrors.inc({ during: 'request' });
      else if (error.code === 'rate_limited' || error.code === 'banned') refusals.inc({ reason: error.code });
    },

    /** An event stream opened; the returned function closes it. */
    eventStreamOpened(): () => void {
      eventStreams.inc();
      return () => eventStreams.dec();
    },

    itemsTaken(by: TakenBy, count: number): void {
      if (count > 0) taken.inc({ by }, count);
    },

    pipeStarted(): void {
      pipesActive.inc();
    },

    pipeBytes(count: number): void {
      pipeBytes.inc(count);
    },

    pipeEnded(cut: boolean): void {
      pipesActive.dec();
      pipeStreams.inc({ outcome: cut ? 'cut' : 'complete' });
    },

    /** Wraps the relay's queue and wait operations so that they count themselves. */
    countRelayCalls<R extends Pick<Relay, 'postToQueue' | 'drainQueue' | 'takeField'>>(relay: R): R {
      const waiting = async <T>(waitMs: number | undefined, call: () => Promise<T>): Promise<T> => {
        if (!waitMs) return call();
        longPolls.inc();
        try {
          return await call();
        } finally {
          longPolls.dec();
        }
      };
      return {
        ...relay,
        async postToQueue(key, item) {
          const result = await relay.postToQueue(key, item);
          if (!result.webhook) queued.inc();
          return result;
        },
        async drainQueue(key, rule, wait) {
          const items = await waiting(wait?.waitMs, () => relay.drainQueue(key, rule, wait));
          taken.inc({ by: 'drain' }, items.length);
          return items;
        },
        takeField: (key, uid, wait) => waiting(wait?.waitMs, () => relay.takeField(key, uid, wait)),
      };
    },

    /** Wraps a webhook sender so that each delivery counts as delivered or failed. */
    countDeliveries(sender: WebhookSender): WebhookSender {
      return {
        check: (url) => sender.check(url),
        async deliver(url, body, signingKey) {
          const delivered = await sender.deliver(url, body, signingKey);
          webhooks.inc({ outcome: delivered ? 'delivered' : 'failed' });
          return delivered;
        },
        close: () => sender.close(),
      };
    },

    /**
     * Wraps the outage watch the HTTP layer reports to: what it reports there are rate-limit counters
     * that could not be reached (the store's own failures reach the watch beneath and answer 503).
     */
    countCounterFailures(outage: OutageWatch): OutageWatch {
      return {
        failed(error, refused, begunIn) {
          storeErrors.inc({ during: 'rate_limit' });
          outage.failed(error, refused, begunIn);
        },
        recovered: () => outage.recovered(),
        get down() {
          return outage.down;
        },
        get epoch() {
          return outage.epoch;
        },
      };
    },
  };
}
