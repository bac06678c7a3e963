// GET /healthz for load balancers, systemd and probes: the store's state, 200 while it answers, 503 while
// it is away or the relay is stopping. Cheap: the backend's own view, and at most one probe a second.
import type { RequestHandler } from 'express';
import type { BackendHealth } from '../backend/open-backend.js';
import { UNLOGGED } from './logging.js';

/** The body of a health answer: no key, no address, nothing but states. */
export interface HealthReport {
  status: 'ok' | 'unavailable' | 'stopping';
  store: BackendHealth;
}

export interface HealthCheckDeps {
  /** The backend's view of its store, kept up by real traffic and the connection's events. */
  health(): BackendHealth;
  /**
   * One cheap store call, made only while `health` says the store is away: an embedded store learns it
   * is back only from a call that succeeds, and a load balancer that sees 503 sends it none.
   */
  probe(): Promise<unknown>;
  /** Aborted once the relay begins to stop. */
  stopping: AbortSignal;
}

/** At most one probe per second, shared by every caller, however often the health check is asked. */
const PROBE_INTERVAL_MS = 1000;
/** A probe that takes longer (a store that hangs rather than refuses) counts as the store being away. */
const PROBE_TIMEOUT_MS = 1000;

/** Builds the health check; `check` costs nothing while the store is up. */
export function createHealthCheck({ health, probe, stopping }: HealthCheckDeps) {
  let lastProbe = Number.NEGATIVE_INFINITY;
  let probing: Promise<void> | undefined;

  const probeOnce = (): Promise<void> => {
    if (probing) return probing;
    if (performance.now() - lastProbe < PROBE_INTERVAL_MS) return Promise.resolve();
    lastProbe = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, PROBE_TIMEOUT_MS);
    });
    probing = Promise.race([probe().then(noop, noop), timeout]).finally(() => {
      clearTimeout(timer);
      probing = undefined;
    });
    return probing;
  };

  return {
    async check(): Promise<HealthReport> {
      if (!health().up) await probeOnce();
      const store = health();
      const status = stopping.aborted ? 'stopping' : store.up ? 'ok' : 'unavailable';
      return { status, store };
    },
  };
}

const noop = () => {};

/** The route: 200 with the report while all is well, 503 with the same shape otherwise; never cached. */
export function serveHealth(check: () => Promise<HealthReport>): RequestHandler {
  return async (_req, res) => {
    const report = await check();
    const healthy = report.status === 'ok';
    // A load balancer asks every few seconds: a healthy answer is counted in the metrics, not logged.
    if (healthy) res.locals[UNLOGGED] = true;
    res
      .status(healthy ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json(report);
  };
}
