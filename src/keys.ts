// Key pairs (DESIGN §2): HMAC-signed, the public key derived from the private one, nothing stored.
import { createHash, createHmac, createSecretKey, randomBytes, timingSafeEqual } from 'node:crypto';

const SIG_LENGTH = 10;
const RAND_LENGTH = 22;
const KEY_PATTERN = /^[A-Za-z0-9_-]{32}$/;
/**
 * Genuine keys whose verdict is kept: a busy relay sees the same keys again and again, and a verdict
 * never changes for one secret. Forged keys are never kept, so each costs the full constant-time check.
 */
const KNOWN_KEYS = 10_000;

export type KeyType = 'private' | 'public';
export type KeyInfo = { type: 'private'; public: string } | { type: 'public' };
export type KeyPair = { private: string; public: string };

/** What a relay knows about keys: how to issue them, check them and name the instance. */
export interface Keyring {
  /** A fresh key pair from 16 random bytes. */
  issue(): KeyPair;
  /** The key's type (and, for a private key, its public key), or undefined when the key is forged. */
  inspect(key: string): KeyInfo | undefined;
  /** The instance id: equal for every instance sharing the secret. */
  readonly id: string;
}

/**
 * A bounded map of the most recently used entries: a hit moves its entry to the newest end, and an
 * insertion past `size` drops the oldest.
 */
function recentlyUsed<V>(size: number) {
  const entries = new Map<string, V>();
  return {
    get(key: string): V | undefined {
      const value = entries.get(key);
      if (value !== undefined) {
        entries.delete(key);
        entries.set(key, value);
      }
      return value;
    },
    set(key: string, value: V): void {
      if (entries.size >= size) entries.delete(entries.keys().next().value as string);
      entries.set(key, value);
    },
  };
}

/** Builds the keyring for one secret. */
export function createKeyring(secret: string): Keyring {
  // The same HMAC as under the string, without turning the string into a key at every signature.
  const signingKey = createSecretKey(Buffer.from(secret, 'utf8'));
  const sign = (type: KeyType, rand: string): string =>
    createHmac('sha256', signingKey).update(`${type}:${rand}`).digest('base64url').slice(0, SIG_LENGTH);
  const publicKeyOf = (privateRand: string): string => {
    const rand = createHash('sha256')
      .update(`public:${privateRand}`)
      .digest('base64url')
      .slice(0, RAND_LENGTH);
    return sign('public', rand) + rand;
  };
  const id = createHmac('sha256', secret).update('id').digest('base64url').slice(0, 8);
  const check = (key: string): KeyInfo | undefined => {
    if (!KEY_PATTERN.test(key)) return undefined;
    const given = Buffer.from(key.slice(0, SIG_LENGTH));
    const rand = key.slice(SIG_LENGTH);
    // Both signatures are computed and compared every time, so timing tells nothing about the type.
    const isPrivate = timingSafeEqual(given, Buffer.from(sign('private', rand)));
    const isPublic = timingSafeEqual(given, Buffer.from(sign('public', rand)));
    if (isPrivate) return Object.freeze({ type: 'private', public: publicKeyOf(rand) });
    if (isPublic) return Object.freeze({ type: 'public' });
    return undefined;
  };
  const known = recentlyUsed<KeyInfo>(KNOWN_KEYS);

  return {
    id,
    issue() {
      const rand = randomBytes(16).toString('base64url');
      return { private: sign('private', rand) + rand, public: publicKeyOf(rand) };
    },
    inspect(key) {
      let info = known.get(key);
      if (info === undefined) {
        info = check(key);
        if (info !== undefined) known.set(key, info);
      }
      return info;
    },
  };
}
