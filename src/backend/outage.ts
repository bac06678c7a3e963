// Quiet outages: a backend that goes away is logged once when it goes and once when it is back, with
// the count of calls refused meanwhile, never a line per failed request (issue 11).
import type { Logger } from 'pino';

export interface OutageWatch {
  /**
   * Records a failure of the backend; the first of an outage logs one line. `refused` (default true)
   * counts it as a refused call; a dropped connection's own error events are not calls. `begunIn`, the
   * {@link epoch} read when the failed call began: a call begun before the latest recovery (queued while the
   * backend was away, failing just after it came back) opens no new outage.
   */
  failed(error: unknown, refused?: boolean, begunIn?: number): void;
  /** Records that the backend answers again; ends an outage with one line. */
  recovered(): void;
  /** True while the backend is away. */
  readonly down: boolean;
  /** Counts the recoveries: read it when a call begins, and pass it to {@link failed} if the call fails. */
  readonly epoch: number;
}

/** Watches one backend (`what`, e.g. "the SQLite store" or "Redis"), logging through `logger`. */
export function createOutageWatch(what: string, logger: Logger, now: () => number = Date.now): OutageWatch {
  let since: number | undefined;
  let refused = 0;
  let epoch = 0;
  return {
    failed(error, countsAsRefused = true, begunIn = epoch) {
      if (countsAsRefused && (since !== undefined || begunIn === epoch)) refused++;
      if (since !== undefined || begunIn !== epoch) return;
      since = now();
      logger.error(
        {
          err:
            error instanceof Error
              ? { message: error.message, code: (error as { code?: unknown }).code }
              : error,
        },
        `${what} is unreachable; answering 503 until it is back`,
      );
    },
    recovered() {
      if (since === undefined) return;
      const seconds = Math.round((now() - since) / 100) / 10;
      logger.warn(
        { downSeconds: seconds, refused },
        `${what} is back after ${seconds} s; ${refused} calls were refused meanwhile`,
      );
      since = undefined;
      refused = 0;
      epoch++;
    },
    get down() {
      return since !== undefined;
    },
    get epoch() {
      return epoch;
    },
  };
}
