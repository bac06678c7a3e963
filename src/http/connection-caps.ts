// Caps on open connections (issue 11): one per client address and one for the server, refused at accept, before any parsing.
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { clientAddress } from './client-address.js';

/** The settings of the caps; `maxConnectionsPerIp` 0 turns the per-address cap off. */
export interface ConnectionCapOptions {
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  /** Behind a reverse proxy every socket comes from the proxy, so the per-address cap is not applied. */
  readonly trustProxy: number;
}

/** What the caps count, for tests and health checks. */
export interface ConnectionStats {
  /** Connections open now (admitted ones). */
  open: number;
  /** Connections admitted since start. */
  admitted: number;
  /** Client addresses (IPv4, or IPv6 /56) holding at least one connection. */
  addresses: number;
  /** Connections refused since start because their address held its cap. */
  refusedPerAddress: number;
  /** Connections refused since start because the server held its cap. */
  refusedGlobal: number;
}

export interface ConnectionCaps {
  stats(): ConnectionStats;
  /** Stops the summary timer. */
  close(): void;
}

/** File descriptors kept for the store, Redis, logs and the like, outside the connection cap. */
const RESERVED_DESCRIPTORS = 64;
/**
 * Half of the rest: a connection may hold a second descriptor while it runs (a webhook delivery, an
 * outgoing socket), and running out of descriptors fails every client, not just the newcomer.
 */
const DESCRIPTORS_PER_CONNECTION = 2;
/** Beyond this many, memory (some tens of KB per open connection) runs out before descriptors do. */
const MAX_SIZED_CONNECTIONS = 65_536;
/** When the open-file limit cannot be read (not Linux): as if it were Linux's usual 1024. */
const ASSUMED_OPEN_FILE_LIMIT = 1024;
/** Refused sockets are counted, not logged one by one: one line when refusing starts, then one a minute. */
const REFUSAL_SUMMARY_MS = 60_000;

/** The process's open-file limit (`ulimit -n`, as Node raised it at start), or undefined where it cannot be read. */
export function readOpenFileLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return line ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The default global cap (DEADROP_MAX_CONNECTIONS unset), sized from the open-file limit. */
export function connectionCapFor(openFileLimit: number | undefined): number {
  const descriptors = (openFileLimit ?? ASSUMED_OPEN_FILE_LIMIT) - RESERVED_DESCRIPTORS;
  return Math.min(MAX_SIZED_CONNECTIONS, Math.max(1, Math.floor(descriptors / DESCRIPTORS_PER_CONNECTION)));
}

/**
 * Caps `server`'s open connections: beyond `maxConnections` Node closes new ones at accept
 * (`server.maxConnections`), and beyond `maxConnectionsPerIp` from one address the socket is destroyed
 * as it arrives. Refusals are counted and summarised in the log, never logged one per socket.
 */
export function capConnections(
  server: Server,
  options: ConnectionCapOptions,
  logger: Logger,
): ConnectionCaps {
  const perAddress = new Map<string, number>();
  const totals = { refusedPerAddress: 0, refusedGlobal: 0 };
  let open = 0;
  let admitted = 0;
  let refusedSinceLastLine = 0;
  let summary: NodeJS.Timeout | undefined;

  const summarise = () => {
    if (refusedSinceLastLine > 0) {
      logger.warn(
        { refused: refusedSinceLastLine, ...totals, open },
        'connections refused in the last minute (DEADROP_MAX_CONNECTIONS_PER_IP, DEADROP_MAX_CONNECTIONS)',
      );
      refusedSinceLastLine = 0;
      return;
    }
    clearInterval(summary);
    summary = undefined;
    logger.info(totals, 'no longer refusing connections');
  };
  const refused = (cap: keyof typeof totals) => {
    totals[cap] += 1;
    if (summary) {
      refusedSinceLastLine += 1;
      return;
    }
    logger.warn(
      { cap: cap === 'refusedGlobal' ? 'DEADROP_MAX_CONNECTIONS' : 'DEADROP_MAX_CONNECTIONS_PER_IP', open },
      'refusing connections over a cap; a count follows every minute while it lasts',
    );
    summary = setInterval(summarise, REFUSAL_SUMMARY_MS).unref();
  };
  const perAddressCap = options.maxConnectionsPerIp > 0 && options.trustProxy === 0;

  server.maxConnections = options.maxConnections;
  server.on('drop', () => refused('refusedGlobal'));
  server.on('connection', (socket: Socket) => {
    // Undefined when the peer is already gone: nothing to count.
    const key =
      perAddressCap && socket.remoteAddress !== undefined ? clientAddress(socket.remoteAddress) : '';
    const held = perAddress.get(key) ?? 0;
    if (key !== '' && held >= options.maxConnectionsPerIp) {
      // A reset rather than a close: no TIME_WAIT is left behind for a refused socket.
      socket.resetAndDestroy();
      refused('refusedPerAddress');
      return;
    }
    open += 1;
    admitted += 1;
    if (key !== '') perAddress.set(key, held + 1);
    socket.once('close', () => {
      open -= 1;
      if (key === '') return;
      const left = (perAddress.get(key) ?? 1) - 1;
      if (left > 0) perAddress.set(key, left);
      else perAddress.delete(key);
    });
  });

  return {
    stats: () => ({
      open,
      admitted,
      addresses: perAddress.size,
      refusedPerAddress: totals.refusedPerAddress,
      refusedGlobal: totals.refusedGlobal,
    }),
    close: () => clearInterval(summary),
  };
}
