// The app's side of a graceful shutdown: one signal that tells the requests it holds open (long-polls,
// event streams) to end, so that only pipe transfers are left for the grace period.
import type { ServerResponse } from 'node:http';

export interface StopSignal {
  /** Aborted once the relay begins to stop. */
  readonly signal: AbortSignal;
  /** Begins the stop: long-polls answer as their wait ending would, event streams end. */
  stop(): void;
  /** A signal for one held-open request: aborted when its client leaves or the relay begins to stop. */
  untilGoneOrStopping(res: ServerResponse): AbortSignal;
}

/** A stop signal not yet given. */
export function createStopSignal(): StopSignal {
  const stopping = new AbortController();
  return {
    signal: stopping.signal,
    stop: () => stopping.abort(),
    untilGoneOrStopping(res) {
      const ended = new AbortController();
      const end = () => ended.abort();
      if (stopping.signal.aborted) end();
      // Removed when the answer closes, so that the long-lived signal holds no listener per past request.
      stopping.signal.addEventListener('abort', end, { once: true });
      res.once('close', () => {
        stopping.signal.removeEventListener('abort', end);
        end();
      });
      return ended.signal;
    },
  };
}
