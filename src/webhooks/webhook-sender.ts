// Webhooks out: checks a hook URL when it is registered, POSTs signed JSON to it, refuses internal addresses at connect time.
import { createHmac, randomUUID } from 'node:crypto';
import { type LookupAddress, lookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { Logger } from 'pino';
import { Agent, buildConnector, request } from 'undici';
import { errors } from '../errors.js';
import { refusalReason } from './address-policy.js';

/** Longer URLs are refused: they are stored per key pair and no real receiver needs more (the de facto browser limit). */
export const MAX_HOOK_URL_LENGTH = 2048;

const USER_AGENT = 'deadrop-webhook/1.0';

/** At most this much of an answer is read (then the connection is dropped): receivers only need to send a status. */
const MAX_ANSWER_BYTES = 64 * 1024;

export interface WebhookSender {
  /**
   * Checks a hook URL when it is registered: an absolute http or https URL of at most 2048 characters whose
   * host, resolved now, has only allowed addresses. Credentials in the URL (`user:pass@`) are kept: they are
   * sent as Basic authorization and never shown. Throws `errors.badHook(reason)` (a 400) when refused.
   * @returns the normalized URL, without its fragment.
   */
  check(url: string): Promise<string>;
  /**
   * POSTs `body` (JSON text) to `url`, signed with `X-Deadrop-Signature: sha256=<hex HMAC-SHA256(body)>` keyed by
   * `signingKey`, with a fresh `X-Deadrop-Delivery` id. Redirects are not followed; every connection is checked
   * against the address policy when it is made, so a host that changed its DNS after `check` gains nothing.
   * @returns true only for a 2xx answer within the timeout; false for anything else. Never throws.
   */
  deliver(url: string, body: string, signingKey: string): Promise<boolean>;
  /** Closes the connections kept alive to receivers. */
  close(): Promise<void>;
}

export interface WebhookSenderOptions {
  /** How long a whole delivery (resolution, connection, answer) may take, in milliseconds. */
  timeoutMs: number;
  /** Skips the address policy, so loopback and private receivers are reached: tests and closed networks only. */
  allowPrivate: boolean;
  logger?: Logger | undefined;
}

/** The error a connection attempt fails with when the receiver's address is refused. */
class RefusedAddressError extends Error {
  readonly code = 'ERR_DEADROP_REFUSED_ADDRESS';
  constructor(
    readonly host: string,
    readonly reason: string,
  ) {
    super(`${host} is refused: ${reason}`);
    this.name = 'RefusedAddressError';
  }
}

/** Builds the sender; its one connection pool lives until `close()`. */
export function createWebhookSender({
  timeoutMs,
  allowPrivate,
  logger,
}: WebhookSenderOptions): WebhookSender {
  const connectDirectly = buildConnector({
    timeout: timeoutMs,
    ...(allowPrivate ? {} : { lookup: lookupAllowedAddresses }),
  });
  const connect: buildConnector.connector = (connectOptions, callback) => {
    // net.connect does not call `lookup` for an IP literal, so a literal is judged here, before any packet.
    const literal = unbracket(connectOptions.hostname);
    const reason = allowPrivate || isIP(literal) === 0 ? undefined : refusalReason(literal);
    if (reason) {
      callback(new RefusedAddressError(literal, reason), null);
      return;
    }
    connectDirectly(connectOptions, callback);
  };
  const agent = new Agent({ connect, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });

  async function checkHost(hostname: string): Promise<void> {
    const literal = unbracket(hostname);
    if (isIP(literal) !== 0) {
      const reason = refusalReason(literal);
      if (reason) throw errors.badHook(`its host ${literal} is refused because ${reason}.`);
      return;
    }
    let addresses: LookupAddress[];
    try {
      addresses = await resolveWithin(hostname, timeoutMs);
    } catch {
      throw errors.badHook(`its host ${hostname} could not be resolved.`);
    }
    for (const { address } of addresses) {
      const reason = refusalReason(address);
      if (reason)
        throw errors.badHook(`its host ${hostname} resolves to ${address}, refused because ${reason}.`);
    }
  }

  return {
    async check(url) {
      const target = parseHookUrl(url);
      if (!allowPrivate) await checkHost(target.hostname);
      return target.href;
    },

    async deliver(url, body, signingKey) {
      let target: URL;
      let authorization: string | undefined;
      try {
        target = parseHookUrl(url);
        authorization = basicAuthorization(target);
      } catch {
        logger?.warn('webhook not sent: its URL is not valid');
        return false;
      }
      // The origin alone is logged: paths and queries of hook URLs often carry the receiver's secret token.
      const origin = target.origin;
      target.username = '';
      target.password = '';
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        'x-deadrop-delivery': randomUUID(),
        'x-deadrop-signature': `sha256=${createHmac('sha256', signingKey).update(body).digest('hex')}`,
      };
      if (authorization) headers.authorization = authorization;
      try {
        const answer = await request(target, {
          method: 'POST',
          dispatcher: agent,
          headers,
          body,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal: AbortSignal.timeout(timeoutMs),
        });
        // The answer is read (and dropped) so the connection can be reused; its failure does not undo a 2xx.
        await answer.body.dump({ limit: MAX_ANSWER_BYTES }).catch(() => {});
        const delivered = answer.statusCode >= 200 && answer.statusCode < 300;
        if (!delivered) logger?.info({ origin, statusCode: answer.statusCode }, 'webhook not delivered');
        return delivered;
      } catch (error) {
        if (error instanceof RefusedAddressError) {
          logger?.warn({ origin, reason: error.reason }, 'webhook not sent: its address is refused');
        } else {
          logger?.info({ origin, reason: describe(error) }, 'webhook not delivered');
        }
        return false;
      }
    },

    async close() {
      await agent.close();
    },
  };
}

/** Parses and normalizes a hook URL, or throws `errors.badHook`. */
function parseHookUrl(url: string): URL {
  if (typeof url !== 'string' || url.length === 0) throw errors.badHook('it is empty.');
  if (url.length > MAX_HOOK_URL_LENGTH) {
    throw errors.badHook(`it is ${url.length} characters long; the limit is ${MAX_HOOK_URL_LENGTH}.`);
  }
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw errors.badHook('it is not an absolute URL.');
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw errors.badHook(`it must start with http: or https:, not ${target.protocol.slice(0, 20)}.`);
  }
  if (target.hostname === '') throw errors.badHook('it has no host.');
  basicAuthorization(target);
  // The fragment is never sent; dropping it keeps the stored URL minimal.
  target.hash = '';
  if (target.href.length > MAX_HOOK_URL_LENGTH) {
    throw errors.badHook(`it is longer than ${MAX_HOOK_URL_LENGTH} characters once normalized.`);
  }
  return target;
}

/** The Basic authorization a `user:pass@` URL asks for (as curl sends it), or undefined without credentials. */
function basicAuthorization(target: URL): string | undefined {
  if (target.username === '' && target.password === '') return undefined;
  let credentials: string;
  try {
    credentials = `${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`;
  } catch {
    throw errors.badHook('its credentials are not valid percent-encoding.');
  }
  return `Basic ${Buffer.from(credentials).toString('base64')}`;
}

/** A `lookup` for net.connect that fails when any address of the host is refused, so no connection is made. */
const lookupAllowedAddresses: LookupFunction = (hostname, options, callback) => {
  lookup(hostname, { all: true }, (error, addresses) => {
    if (error) {
      callback(error, []);
      return;
    }
    for (const { address } of addresses) {
      const reason = refusalReason(address);
      if (reason) {
        callback(new RefusedAddressError(hostname, reason), []);
        return;
      }
    }
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0);
    const usable = family === 0 ? addresses : addresses.filter((candidate) => candidate.family === family);
    const [first] = usable;
    if (!first) {
      callback(
        Object.assign(new Error(`${hostname} has no IPv${family} address`), { code: 'ENOTFOUND' }),
        [],
      );
      return;
    }
    if (options.all) callback(null, usable);
    else callback(null, first.address, first.family);
  });
};

/** All addresses of `hostname`, or a rejection when resolution fails or takes longer than `timeoutMs`. */
function resolveWithin(hostname: string, timeoutMs: number): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`resolving took over ${timeoutMs} ms`)), timeoutMs);
    lookup(hostname, { all: true }, (error, addresses) => {
      clearTimeout(timer);
      if (error) reject(error);
      else if (addresses.length === 0) reject(new Error('no address'));
      else resolve(addresses);
    });
  });
}

const unbracket = (hostname: string) =>
  hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : `${error.name}: ${error.message}`;
  }
  return String(error);
}
