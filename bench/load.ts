// What the relay benchmarks share: autocannon with a time limit, key pairs fetched and requests sent in
// bulk, and a cycle of keys for autocannon's per-request setup.
import autocannon, { type Options, type Request, type Result } from 'autocannon';

export const CONNECTIONS = 50;
/** Upper bound for the untimed runs (key fetching, filling, cleanup), so a stuck relay cannot hang a bench. */
const UNTIMED_LIMIT_MS = 180_000;

export interface KeyPair {
  private: string;
  public: string;
}

/** Runs autocannon, stopping it after `limitMs` (only `amount` runs can last longer than planned). */
export async function cannon(options: Options, limitMs: number): Promise<Result> {
  const instance = autocannon({ connections: CONNECTIONS, timeout: 10, ...options });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    instance.stop();
  }, limitMs);
  try {
    const result = await instance;
    if (timedOut) throw new Error(`autocannon on ${options.url} did not finish within ${limitMs} ms`);
    return result;
  } finally {
    clearTimeout(timer);
  }
}

export const statusCounts = (result: Result) =>
  Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]));

/** Sends exactly `count` requests built by `request`, at full speed; returns how many got each status. */
export async function sendEach(
  url: string,
  count: number,
  request: Request,
): Promise<Record<string, number>> {
  const result = await cannon(
    { url, amount: count, connections: Math.min(CONNECTIONS, count), requests: [request] },
    UNTIMED_LIMIT_MS,
  );
  return statusCounts(result);
}

export interface Cycle<T> {
  take(): T;
  /** How many were taken; past the number of items, the cycle has wrapped around. */
  readonly taken: number;
}

/** Cycles through `items` for setupRequest, which autocannon calls once per request sent. */
export function cycle<T>(items: readonly T[]): Cycle<T> {
  let next = 0;
  return {
    take: (): T => items[next++ % items.length] as T,
    get taken() {
      return next;
    },
  };
}

/** `count` fresh key pairs from the relay at `url`. */
export async function fetchKeyPairs(url: string, count: number): Promise<KeyPair[]> {
  const pairs: KeyPair[] = [];
  await sendEach(url, count, {
    path: '/keys',
    onResponse: (status, body) => {
      if (status === 200) pairs.push(JSON.parse(body) as KeyPair);
    },
  });
  if (pairs.length !== count) throw new Error(`GET /keys gave ${pairs.length} key pairs of ${count}`);
  return pairs;
}
