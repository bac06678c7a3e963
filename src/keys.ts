// Key pairs (DESIGN §2): HMAC-signed, the public key derived from the private one, nothing stored.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const SIG_LENGTH = 10;
const RAND_LENGTH = 22;
const KEY_PATTERN = /^[A-Za-z0-9_-]{32}$/;

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

/** Builds the keyring for one secret. */
export function createKeyring(secret: string): Keyring {
  const sign = (type: KeyType, rand: string): string =>
    createHmac('sha256', secret).update(`${type}:${rand}`).digest('base64url').slice(0, SIG_LENGTH);
  const publicKeyOf = (privateRand: string): string => {
    const rand = createHash('sha256')
      .update(`public:${privateRand}`)
      .digest('base64url')
      .slice(0, RAND_LENGTH);
    return sign('public', rand) + rand;
  };
  const id = createHmac('sha256', secret).update('id').digest('base64url').slice(0, 8);

  return {
    id,
    issue() {
      const rand = randomBytes(16).toString('base64url');
      return { private: sign('private', rand) + rand, public: publicKeyOf(rand) };
    },
    inspect(key) {
      if (!KEY_PATTERN.test(key)) return undefined;
      const given = Buffer.from(key.slice(0, SIG_LENGTH));
      const rand = key.slice(SIG_LENGTH);
      // Both signatures are computed and compared every time, so timing tells nothing about the type.
      const isPrivate = timingSafeEqual(given, Buffer.from(sign('private', rand)));
      const isPublic = timingSafeEqual(given, Buffer.from(sign('public', rand)));
      if (isPrivate) return { type: 'private', public: publicKeyOf(rand) };
      if (isPublic) return { type: 'public' };
      return undefined;
    },
  };
}
