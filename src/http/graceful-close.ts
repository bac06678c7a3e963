// Closing an HTTP server gracefully: stop accepting at once, close idle keep-alive sockets at once and busy
// ones after their answer, give what still runs a grace period, then cut it.
import type { Server, ServerResponse } from 'node:http';

export interface GracefulClose {
  /**
   * Stops accepting, closes idle connections and each busy one once its answer is done, and resolves
   * when none is left; those still open after `graceMs` are cut. Later calls return the same promise.
   * @returns how many connections were cut.
   */
  close(graceMs: number): Promise<number>;
  /** Cuts every connection now, ending a close in progress (or starting one with no grace). */
  cut(): void;
}

/** Tracks `server`'s answers from now on, so that a close can end their connections; call before listening. */
export function trackForGracefulClose(server: Server): GracefulClose {
  const answering = new Set<ServerResponse>();
  let closing = false;
  let closed: Promise<number> | undefined;
  let cutNow = () => {};
  const cutSignal = new Promise<void>((resolve) => {
    cutNow = resolve;
  });

  server.prependListener('request', (_req, res: ServerResponse) => {
    if (closing) res.shouldKeepAlive = false;
    answering.add(res);
    res.once('close', () => {
      answering.delete(res);
      // An answer sent with keep-alive leaves an idle socket behind: a closing server closes it at once.
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
  });

  const close = (graceMs: number): Promise<number> => {
    closed ??= (async () => {
      closing = true;
      const allClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const res of answering) if (!res.headersSent) res.shouldKeepAlive = false;
      server.closeIdleConnections();
      const grace = new Promise<'over'>((resolve) => {
        const timer = setTimeout(() => resolve('over'), graceMs);
        void allClosed.then(() => clearTimeout(timer));
        void cutSignal.then(() => clearTimeout(timer));
      });
      const outcome = await Promise.race([allClosed.then(() => 'done' as const), grace, cutSignal]);
      if (outcome === 'done') return 0;
      const left = await connectionCount(server);
      server.closeAllConnections();
      await allClosed;
      return left;
    })();
    return closed;
  };

  return {
    close,
    cut() {
      cutNow();
      void close(0);
    },
  };
}

function connectionCount(server: Server): Promise<number> {
  return new Promise((resolve) => server.getConnections((error, count) => resolve(error ? 0 : count)));
}
