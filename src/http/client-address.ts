// Who a request counts against: the client's address (behind trusted proxies, the one they name), as one
// client holds it, and only ever as a keyed hash.
import { createHmac } from 'node:crypto';
import type { Request } from 'express';
import ipaddr from 'ipaddr.js';

/** An IPv6 client usually holds a whole /56 (RFC 6177); counting per address would let it rotate freely. */
const IPV6_CLIENT_PREFIX = 56;

/** `::ffff:192.0.2.1` → `192.0.2.1`; an IPv6 address → its /56 network; anything unparsable as given. */
export function clientAddress(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  const parsed = ipaddr.process(ip);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const bytes = parsed.toByteArray();
  bytes.fill(0, IPV6_CLIENT_PREFIX / 8);
  return `${ipaddr.fromByteArray(bytes).toString()}/${IPV6_CLIENT_PREFIX}`;
}

/** Hashes kept per address: a busy relay sees the same clients again and again. */
const CACHED_CLIENTS = 10_000;

/** Builds `clientOf(req)`: HMAC-SHA256 of the client address under a key derived from the secret. */
export function clientHasher(secret: string): (req: Request) => string {
  const key = createHmac('sha256', secret).update('deadrop/rate-limit/ip').digest();
  const known = new Map<string, string>();
  // A request asks up to three times (ban, rate limit, write budget); `req.ip` parses headers each time.
  const ofRequest = new WeakMap<Request, string>();
  return (req) => {
    let client = ofRequest.get(req);
    if (client !== undefined) return client;
    const ip = req.ip ?? '';
    client = known.get(ip);
    if (client === undefined) {
      client = createHmac('sha256', key).update(clientAddress(ip)).digest('base64url').slice(0, 22);
      if (known.size >= CACHED_CLIENTS) known.clear();
      known.set(ip, client);
    }
    ofRequest.set(req, client);
    return client;
  };
}
