// Raw loopback sockets for hostile-client tests: write bytes as an attacker would, read the answer as sent.
import { connect, type Socket } from 'node:net';

export interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A client that writes raw bytes and reads what comes back, as an attacker (or a careful test) would. */
export interface RawClient {
  socket: Socket;
  /** Everything received so far, as text. */
  received(): string;
  /** The first whole response (head and Content-Length body); rejects if the connection ends first. */
  reply(): Promise<RawReply>;
  /** Resolves when the connection has closed, whoever closed it. */
  closed: Promise<void>;
  /** When the first bytes were written (performance.now()). */
  openedAt: number;
}

/** Connects from `localAddress` (any of 127/8 is loopback) and resolves once connected or already closed. */
export async function openRaw(
  port: number,
  localAddress = '127.0.0.1',
  firstBytes?: string,
): Promise<RawClient> {
  const socket = connect({ port, host: '127.0.0.1', localAddress });
  const chunks: Buffer[] = [];
  const waiters = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    for (const wake of waiters) wake();
  });
  // A refused connection is reset; that is an outcome the tests read from `received`, not a failure.
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      for (const wake of waiters) wake();
      resolve();
    }),
  );
  let openedAt = Number.NaN;
  await new Promise<void>((resolve) => {
    socket.once('connect', () => {
      openedAt = performance.now();
      if (firstBytes !== undefined) socket.write(firstBytes);
      resolve();
    });
    socket.once('close', () => resolve());
  });
  const received = () => Buffer.concat(chunks).toString('utf8');
  const parse = (): RawReply | undefined => {
    const bytes = Buffer.concat(chunks);
    const end = bytes.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const [statusLine = '', ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
    const headers = Object.fromEntries(
      lines.map((line) => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
      }),
    );
    const length = Number(headers['content-length'] ?? 0);
    if (bytes.length < end + 4 + length) return undefined;
    const body = bytes.subarray(end + 4, end + 4 + length).toString('utf8');
    return { status: Number(statusLine.split(' ')[1]), headers, body };
  };
  const reply = () =>
    new Promise<RawReply>((resolve, reject) => {
      const check = () => {
        const parsed = parse();
        if (parsed) {
          waiters.delete(check);
          resolve(parsed);
        } else if (socket.destroyed) {
          waiters.delete(check);
          reject(
            new Error(`the connection closed before a whole response; got ${JSON.stringify(received())}`),
          );
        }
      };
      waiters.add(check);
      check();
    });
  return { socket, received, reply, closed, openedAt };
}

/** Request headers of a write whose body is announced and (by default) never sent. */
export const head = (method: string, path: string, headers: Record<string, string | number>) =>
  `${method} ${path} HTTP/1.1\r\nHost: relay.test\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
